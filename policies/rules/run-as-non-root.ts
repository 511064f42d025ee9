import { ResourceValidationPolicy } from "@pulumi/policy";
import { Workload, workloadRule } from "../lib/rule";
import { effective, exempt, isRootUser } from "../lib/security";
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
    const out: string[] = [];
    for (const c of w.containers) {
        if (exempt(cfg.rootExemptions, w.id.workload, str(c.container.image))) continue;
        const nonRoot = effective(w.pod!.spec, c, "runAsNonRoot");
        const uid = num(effective(w.pod!.spec, c, "runAsUser"));
        if (nonRoot !== true) out.push(`container "${c.name}" does not set runAsNonRoot: true`);
        else if (uid === 0) out.push(`container "${c.name}" sets runAsUser: 0`);
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
