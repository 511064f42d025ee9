import { ResourceValidationPolicy } from "@pulumi/policy";
import { LABEL_ROLE, LABEL_WORKLOAD, WORKLOAD_ROLES } from "../../catalog/labels";
import { Workload, workloadRule } from "../lib/rule";
import { DATASTORES, dockerLabels, K8S, Labels, metadataLabels, MONITORING } from "../lib/workloads";

function labelProblems(where: string, labels: Labels): string[] {
    const out: string[] = [];
    const workload = labels[LABEL_WORKLOAD];
    const role = labels[LABEL_ROLE];
    if (!workload) out.push(`${where}has no ${LABEL_WORKLOAD} label`);
    if (!role) out.push(`${where}has no ${LABEL_ROLE} label`);
    else if (!(WORKLOAD_ROLES as readonly string[]).includes(role)) out.push(`${where}has ${LABEL_ROLE}=${role}, not one of ${WORKLOAD_ROLES.join(", ")}`);
    if (workload && role) {
        if (DATASTORES.includes(workload) && role !== "datastore") out.push(`${where}labels the datastore ${workload} as role ${role}`);
        if (MONITORING.includes(workload) && role !== "monitoring") out.push(`${where}labels ${workload} as role ${role}, not monitoring`);
    }
    return out;
}

/**
 * The labels the other policies key on. Kubernetes workloads carry them on metadata and on the pod
 * template (NetworkPolicies and PDBs select pods by them).
 */
export function missingLabels(w: Workload): string[] {
    if (w.target === "docker") return labelProblems("", dockerLabels(w.props));
    const out = labelProblems("metadata ", metadataLabels(w.props));
    if (w.type !== K8S.pod) out.push(...labelProblems("pod template ", w.pod?.labels ?? {}));
    return out;
}

export const requiredWorkloadLabels: ResourceValidationPolicy = {
    name: "required-workload-labels",
    description:
        `Every workload is labelled ${LABEL_WORKLOAD}=<name> and ${LABEL_ROLE}=<${WORKLOAD_ROLES.join("|")}> (Docker labels; ` +
        "Kubernetes metadata and pod template), which the exposure, hardening and availability policies rely on.",
    severity: "low",
    validateResource: workloadRule({}, missingLabels, (w, p) => `${w.label} ${p}; set both labels as the conventions describe.`),
};
