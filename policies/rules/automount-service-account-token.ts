import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { workloadRule } from "../lib/rule";
import { forEveryPodSpec } from "../lib/remediation";

export interface AutomountConfig {
    /** Workloads (trading.io/workload) that talk to the Kubernetes API and need their token. */
    exemptWorkloads: string[];
}

const defaults: AutomountConfig = { exemptWorkloads: [] };

export const automountServiceAccountToken: ResourceValidationPolicy = {
    name: "automount-service-account-token",
    description:
        "Pods set automountServiceAccountToken: false, so a compromised container holds no Kubernetes API " +
        "credential (none of the platform's services calls the API). Remediable.",
    severity: "medium",
    configSchema: {
        properties: { exemptWorkloads: { type: "array", items: { type: "string" }, default: [] } },
    },
    validateResource: workloadRule(defaults, (w, cfg) =>
        w.pod && !cfg.exemptWorkloads.includes(w.id.workload) && w.pod.spec.automountServiceAccountToken !== false
            ? ["mounts the service account token (automountServiceAccountToken is not false)"]
            : [],
    (w, p) => `${w.label} ${p}; set spec.automountServiceAccountToken: false on the pod template ` +
        "(exemptions: policy config exemptWorkloads).", ["kubernetes"]),
    remediateResource: forEveryPodSpec((spec, w, args) => {
        if (readConfig(args, defaults).exemptWorkloads.includes(w.workload)) return;
        spec.automountServiceAccountToken = false;
    }),
};
