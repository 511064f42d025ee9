import { ResourceValidationPolicy } from "@pulumi/policy";
import { Workload, workloadRule } from "../lib/rule";
import { exempt, isRootUser } from "../lib/security";
import { isUnknown, num, str } from "../lib/values";

export interface NonRootConfig {
    /** Workload names or image basenames whose entrypoint must start as root (e.g. "postgres"). */
    rootExemptions: string[];
}

const defaults: NonRootConfig = { rootExemptions: [] };

export function rootProblems(w: Workload, cfg: NonRootConfig = defaults): string[] {
    if (w.target === "docker") {
        if (exempt(cfg.rootExemptions, w.id.workload, str(w.props.image))) return [];
        if (isUnknown(w.props.user)) return []; // computed
        const user = str(w.props.user);
        return isRootUser(user) ? [user === undefined ? "sets no user, so it runs as the image's user (often root)" : `runs as "${user}" (root)`] : [];
    }
    // As Pod Security admission reads it: an explicit false or 0 at pod level is wrong even when
    // every container overrides it; a container without its own value inherits the pod's.
    const out: string[] = [];
    const pod = w.pod?.spec.securityContext;
    const containers = w.containers.filter((c) => !exempt(cfg.rootExemptions, w.id.workload, str(c.container.image)));
    if (containers.length === 0) return out;
    if (pod?.runAsNonRoot === false) out.push("pod sets runAsNonRoot: false");
    if (num(pod?.runAsUser) === 0) out.push("pod sets runAsUser: 0");
    for (const c of containers) {
        const own = c.container.securityContext?.runAsNonRoot;
        if (own === false || (own !== true && pod?.runAsNonRoot !== true)) out.push(`container "${c.name}" does not set runAsNonRoot: true`);
        if (num(c.container.securityContext?.runAsUser) === 0) out.push(`container "${c.name}" sets runAsUser: 0`);
    }
    return out;
}

export const runAsNonRoot: ResourceValidationPolicy = {
    name: "run-as-non-root",
    description:
        "Containers run as a non-root user (Docker `user`, Kubernetes runAsNonRoot: true and runAsUser != 0), " +
        "except images listed in the policy config's rootExemptions.",
    severity: "high",
    configSchema: {
        properties: {
            rootExemptions: { type: "array", items: { type: "string" }, default: [] },
        },
    },
    validateResource: workloadRule(defaults, rootProblems, (w, p) => {
        const fix = w.target === "docker"
            ? "set user to a non-root uid:gid (e.g. \"1000:1000\")"
            : "set securityContext.runAsNonRoot: true and runAsUser to a non-zero uid";
        return `${w.label} ${p}; ${fix}, or list the image in rootExemptions if its entrypoint must start as root.`;
    }),
};
