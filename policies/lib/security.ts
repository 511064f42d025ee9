/** Effective Kubernetes security settings of a container (container securityContext overrides the pod's). */
import { arr, isRecord, num, str } from "./values";
import { parseImageRef } from "./images";
import type { K8sContainer } from "./workloads";

export function effective(spec: Record<string, any>, c: K8sContainer, field: string): any {
    const own = c.container.securityContext;
    if (isRecord(own) && own[field] !== undefined && own[field] !== null) return own[field];
    const pod = spec.securityContext;
    if (isRecord(pod) && pod[field] !== undefined && pod[field] !== null) return pod[field];
    return undefined;
}

export function capabilityList(value: unknown): string[] {
    return arr(value).map((c) => str(c)).filter((c): c is string => !!c).map((c) => c.toUpperCase().replace(/^CAP_/, ""));
}

/** Docker `user`: "name", "uid", "name:group", "uid:gid". Root when empty, "root" or uid 0. */
export function isRootUser(user: string | undefined): boolean {
    if (user === undefined) return true;
    const name = user.split(":")[0].trim();
    return name === "" || name === "root" || num(name) === 0;
}

/** Does an exemption list (workload names or image basenames) cover this container? */
export function exempt(list: string[], workload: string, image: string | undefined): boolean {
    if (list.includes(workload)) return true;
    if (image === undefined) return false;
    const ref = parseImageRef(image);
    return list.includes(ref.basename) || list.includes(ref.repository);
}
