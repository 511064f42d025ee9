import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { workloadRule } from "../lib/rule";
import { forEveryPodSpec } from "../lib/remediation";
import { arr, isRecord, plain, str } from "../lib/values";
import { describe, K8S } from "../lib/workloads";

export interface AutomountConfig {
    /** Workloads (trading.io/workload) that talk to the Kubernetes API and need their token. */
    exemptWorkloads: string[];
}

const defaults: AutomountConfig = { exemptWorkloads: [] };

/** Service account tokens a pod mounts by hand (a projected volume's serviceAccountToken source), past automountServiceAccountToken: false. */
function projectedTokens(spec: Record<string, any>): string[] {
    return arr(spec.volumes).filter(isRecord).flatMap((v) =>
        arr(v.projected?.sources).some((src) => isRecord(src) && src.serviceAccountToken !== undefined)
            ? [`mounts a service account token through the projected volume "${str(v.name) ?? "<unnamed>"}"`]
            : []);
}

export const automountServiceAccountToken: ResourceValidationPolicy = {
    name: "automount-service-account-token",
    description:
        "Pods set automountServiceAccountToken: false, so a compromised container holds no Kubernetes API " +
        "credential (none of the platform's services calls the API). Remediable.",
    severity: "medium",
    configSchema: {
        properties: { exemptWorkloads: { type: "array", items: { type: "string" }, default: [] } },
    },
    validateResource: [
        workloadRule(defaults, (w, cfg) => {
            if (!w.pod || cfg.exemptWorkloads.includes(w.id.workload)) return [];
            const out = w.pod.spec.automountServiceAccountToken !== false ? ["mounts the service account token (automountServiceAccountToken is not false)"] : [];
            return [...out, ...projectedTokens(w.pod.spec)];
        },
        (w, p) => `${w.label} ${p}; set spec.automountServiceAccountToken: false on the pod template and mount no token ` +
            "(exemptions: policy config exemptWorkloads).", ["kubernetes"]),
        // A Secret of this type makes the token controller fill in a token that never expires.
        (args, reportViolation) => {
            if (args.type !== K8S.secret) return args.notApplicable("only Kubernetes Secrets");
            if (str(plain(args.props).type) !== "kubernetes.io/service-account-token") return;
            reportViolation(`${describe(args.type, args.name)} is of type kubernetes.io/service-account-token: the cluster fills it with a ` +
                "service account token that never expires; no workload of the platform calls the Kubernetes API (one that must gets a " +
                "short-lived projected token, listed in exemptWorkloads).");
        },
    ],
    remediateResource: forEveryPodSpec((spec, w, args) => {
        if (readConfig(args, defaults).exemptWorkloads.includes(w.workload)) return;
        spec.automountServiceAccountToken = false;
    }),
};
