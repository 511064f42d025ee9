import { ResourceValidationPolicy } from "@pulumi/policy";
import { unwrap } from "../lib/values";
import {
    DATASTORES, describe, DOCKER_CONTAINER, dockerLabels, isK8sWorkload, K8S, LABEL_ROLE, LABEL_WORKLOAD, Labels,
    metadataLabels, MONITORING, podTemplate, ROLES,
} from "../lib/workloads";

function labelProblems(where: string, labels: Labels): string[] {
    const out: string[] = [];
    const workload = labels[LABEL_WORKLOAD];
    const role = labels[LABEL_ROLE];
    if (!workload) out.push(`${where}has no ${LABEL_WORKLOAD} label`);
    if (!role) out.push(`${where}has no ${LABEL_ROLE} label`);
    else if (!(ROLES as readonly string[]).includes(role)) out.push(`${where}has ${LABEL_ROLE}=${role}, not one of ${ROLES.join(", ")}`);
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
export function missingLabels(type: string, props: Record<string, any>): string[] {
    if (type === DOCKER_CONTAINER) return labelProblems("", dockerLabels(props));
    const out = labelProblems("metadata ", metadataLabels(props));
    if (type !== K8S.pod) {
        const tmpl = podTemplate(type, props);
        out.push(...labelProblems("pod template ", tmpl?.labels ?? {}));
    }
    return out;
}

export const requiredWorkloadLabels: ResourceValidationPolicy = {
    name: "required-workload-labels",
    description:
        `Every workload is labelled ${LABEL_WORKLOAD}=<name> and ${LABEL_ROLE}=<${ROLES.join("|")}> (Docker labels; ` +
        "Kubernetes metadata and pod template), which the exposure, hardening and availability policies rely on.",
    severity: "low",
    validateResource: (args, reportViolation) => {
        if (args.type !== DOCKER_CONTAINER && !isK8sWorkload(args.type)) args.notApplicable("only workloads");
        for (const p of missingLabels(args.type, unwrap(args.props))) {
            reportViolation(`${describe(args.type, args.name)} ${p}; set both labels as the conventions describe.`);
        }
    },
};
