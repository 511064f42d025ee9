import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { effective, exempt, isRootUser } from "../lib/security";
import { num, str, unwrap } from "../lib/values";
import { describe, DOCKER_CONTAINER, identity, isK8sWorkload, podContainers, podTemplate } from "../lib/workloads";

export interface NonRootConfig {
    /** Workload names or image basenames whose entrypoint must start as root (e.g. "postgres"). */
    rootExemptions: string[];
}

const defaults: NonRootConfig = { rootExemptions: [] };

export function rootProblems(type: string, name: string, props: Record<string, any>, cfg: NonRootConfig = defaults): string[] {
    const id = identity(type, name, props);
    if (type === DOCKER_CONTAINER) {
        if (exempt(cfg.rootExemptions, id.workload, str(props.image))) return [];
        const user = str(props.user);
        if (props.user !== undefined && user === undefined) return []; // computed
        return isRootUser(user) ? [user === undefined ? "sets no user, so it runs as the image's user (often root)" : `runs as "${user}" (root)`] : [];
    }
    const tmpl = podTemplate(type, props);
    const out: string[] = [];
    for (const c of tmpl ? podContainers(tmpl.spec) : []) {
        if (exempt(cfg.rootExemptions, id.workload, str(c.container.image))) continue;
        const nonRoot = effective(tmpl!.spec, c, "runAsNonRoot");
        const uid = num(effective(tmpl!.spec, c, "runAsUser"));
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
    validateResource: (args, reportViolation) => {
        if (args.type !== DOCKER_CONTAINER && !isK8sWorkload(args.type)) args.notApplicable("only containers");
        for (const p of rootProblems(args.type, args.name, unwrap(args.props), readConfig(args, defaults))) {
            const fix = args.type === DOCKER_CONTAINER
                ? "set user to a non-root uid:gid (e.g. \"1000:1000\")"
                : "set securityContext.runAsNonRoot: true and runAsUser to a non-zero uid";
            reportViolation(`${describe(args.type, args.name)} ${p}; ${fix}, or list the image in rootExemptions if its entrypoint must start as root.`);
        }
    },
};
