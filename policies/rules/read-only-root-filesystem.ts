import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { eitherTarget, forDockerContainer, forEveryContainer, securityContextOf } from "../lib/remediation";
import { Workload, workloadRule } from "../lib/rule";
import { WorkloadIdentity } from "../lib/workloads";

export interface ReadOnlyConfig {
    /** trading.io/role values whose containers must have a read-only root filesystem. */
    roles: string[];
    /** Workload names exempted. */
    exemptWorkloads: string[];
}

const defaults: ReadOnlyConfig = { roles: ["service"], exemptWorkloads: [] };

function covered(id: WorkloadIdentity, cfg: ReadOnlyConfig): boolean {
    return id.role !== undefined && cfg.roles.includes(id.role) && !cfg.exemptWorkloads.includes(id.workload);
}

export function writableRootProblems(w: Workload, cfg: ReadOnlyConfig = defaults): string[] {
    if (!covered(w.id, cfg)) return [];
    if (w.target === "docker") return w.props.readOnly === true ? [] : ["does not set readOnly: true"];
    return w.containers
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
    validateResource: workloadRule(defaults, writableRootProblems, (w, p) => {
        const fix = w.target === "docker"
            ? "set readOnly: true and mount a tmpfs (tmpfs: { \"/tmp\": \"rw,size=64m\" }) where the service writes"
            : "set securityContext.readOnlyRootFilesystem: true and mount an emptyDir at /tmp";
        return `${w.label} ${p}; ${fix}.`;
    }),
    // Only where the workload allows it: the roles this policy covers (services write only to their
    // tmpfs/emptyDir scratch space by design), not datastores, which write to their root filesystem.
    remediateResource: eitherTarget(
        forDockerContainer((props, id, args) => {
            if (covered(id, readConfig(args, defaults))) props.readOnly = true;
        }),
        forEveryContainer((c, _spec, id, args) => {
            if (covered(id, readConfig(args, defaults))) securityContextOf(c).readOnlyRootFilesystem = true;
        }),
    ),
};
