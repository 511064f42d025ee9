import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { unwrap } from "../lib/values";
import { describe, DOCKER_CONTAINER, identity, isK8sWorkload, podContainers, podTemplate } from "../lib/workloads";

export interface ReadOnlyConfig {
    /** trading.io/role values whose containers must have a read-only root filesystem. */
    roles: string[];
    /** Workload names exempted. */
    exemptWorkloads: string[];
}

const defaults: ReadOnlyConfig = { roles: ["service"], exemptWorkloads: [] };

export function writableRootProblems(type: string, name: string, props: Record<string, any>, cfg: ReadOnlyConfig = defaults): string[] {
    const id = identity(type, name, props);
    if (id.role === undefined || !cfg.roles.includes(id.role) || cfg.exemptWorkloads.includes(id.workload)) return [];
    if (type === DOCKER_CONTAINER) {
        return props.readOnly === true ? [] : ["does not set readOnly: true"];
    }
    const tmpl = podTemplate(type, props);
    return (tmpl ? podContainers(tmpl.spec) : [])
        .filter((c) => c.container.securityContext?.readOnlyRootFilesystem !== true)
        .map((c) => `container "${c.name}" does not set readOnlyRootFilesystem: true`);
}

export const readOnlyRootFilesystem: ResourceValidationPolicy = {
    name: "read-only-root-filesystem",
    description:
        "Stateless workloads (trading.io/role=service) run with a read-only root filesystem, so an intruder " +
        "cannot drop binaries or alter code; writable paths come from tmpfs/emptyDir mounts.",
    severity: "medium",
    configSchema: {
        properties: {
            roles: { type: "array", items: { type: "string" }, default: defaults.roles },
            exemptWorkloads: { type: "array", items: { type: "string" }, default: [] },
        },
    },
    validateResource: (args, reportViolation) => {
        if (args.type !== DOCKER_CONTAINER && !isK8sWorkload(args.type)) args.notApplicable("only containers");
        for (const p of writableRootProblems(args.type, args.name, unwrap(args.props), readConfig(args, defaults))) {
            const fix = args.type === DOCKER_CONTAINER
                ? "set readOnly: true and mount a tmpfs (tmpfs: { \"/tmp\": \"rw,size=64m\" }) where the service writes"
                : "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir at /tmp";
            reportViolation(`${describe(args.type, args.name)} ${p}; ${fix}.`);
        }
    },
};
