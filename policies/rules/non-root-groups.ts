import { ResourceValidationPolicy } from "@pulumi/policy";
import { Workload, workloadRule } from "../lib/rule";
import { arr, num, str } from "../lib/values";

/**
 * Processes do not run with the root group (gid 0 owns much of an image's filesystem): Kubernetes
 * runAsGroup (pod and container), fsGroup and supplementalGroups; Docker `user` "uid:0" and groupAdds.
 */
export function rootGroupProblems(w: Workload): string[] {
    if (w.target === "docker") {
        const out: string[] = [];
        const user = str(w.props.user);
        const group = user?.includes(":") ? user.split(":")[1].trim() : undefined;
        if (group !== undefined && (group === "root" || num(group) === 0)) out.push(`runs with the root group (user "${user}")`);
        const adds = arr(w.props.groupAdds).map((g) => str(g)).filter((g): g is string => g !== undefined);
        // docker: the engine's socket; disk: the host's raw block devices, where device files reach them.
        for (const g of adds) if (g === "root" || num(g) === 0 || g === "docker" || g === "disk") out.push(`adds the group "${g}" (groupAdds)`);
        return out;
    }
    if (!w.pod) return [];
    const pod = w.pod.spec.securityContext;
    const out: string[] = [];
    if (num(pod?.runAsGroup) === 0) out.push("pod sets runAsGroup: 0");
    if (num(pod?.fsGroup) === 0) out.push("pod sets fsGroup: 0");
    if (arr(pod?.supplementalGroups).some((g) => num(g) === 0)) out.push("pod lists group 0 in supplementalGroups");
    for (const c of w.containers) {
        if (num(c.container.securityContext?.runAsGroup) === 0) out.push(`container "${c.name}" sets runAsGroup: 0`);
    }
    return out;
}

export const nonRootGroups: ResourceValidationPolicy = {
    name: "non-root-groups",
    description:
        "Containers do not run with the root group: no runAsGroup/fsGroup/supplementalGroups 0 on Kubernetes, no " +
        "\"uid:0\" user or root/docker/disk groupAdds on Docker.",
    severity: "medium",
    validateResource: workloadRule({}, rootGroupProblems, (w, p) => `${w.label} ${p}; use the image's own non-root group id ` +
        (w.target === "docker" ? "(user \"uid:gid\" with gid != 0)." : "(runAsGroup/fsGroup != 0).")),
};
