import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { workloadRule } from "../lib/rule";
import { forEveryPodSpec } from "../lib/remediation";
import { arr, isRecord, plain, str } from "../lib/values";
import { describe, K8S, projectedTokenVolumes } from "../lib/workloads";

export interface AutomountConfig {
    /** Workloads (trading.io/workload) that talk to the Kubernetes API and need their token. */
    exemptWorkloads: string[];
}

const defaults: AutomountConfig = { exemptWorkloads: [] };

/** Service account tokens a pod mounts by hand (a projected volume's serviceAccountToken source), past automountServiceAccountToken: false. */
function projectedTokens(spec: Record<string, any>): string[] {
    return projectedTokenVolumes(spec).map((name) => `mounts a service account token through the projected volume "${name}"`);
}

const EXEMPT = "is exempt (exemptWorkloads)";

/** The kubelet's default lifetime of a projected token (the API server's own tokens, an hour). */
const MAX_TOKEN_SECONDS = 3600;

/**
 * Session 63b: what an exempt workload's projected token may still not be. Exempt, it calls the Kubernetes API; a token of
 * another `audience` is a credential to another system (a vault, a cloud's identity federation) the exemption never
 * covered, and one of a long `expirationSeconds` (up to 2^32 s) stays valid long after the pod that leaked it is gone.
 */
function exemptTokenProblems(spec: Record<string, any>): string[] {
    return arr(spec.volumes).filter(isRecord).flatMap((v) => arr(v.projected?.sources).filter((src) => isRecord(src) && isRecord(src.serviceAccountToken))
        .flatMap((src) => {
            const token = src.serviceAccountToken;
            const at = `${EXEMPT}, but the projected volume "${str(v.name) ?? "<unnamed>"}"'s service account token`;
            const out: string[] = [];
            const audience = str(token.audience);
            if (audience !== undefined && audience !== "") {
                out.push(`${at} is for the audience "${audience}", a credential to another system than the Kubernetes API its exemption is for`);
            }
            if (typeof token.expirationSeconds === "number" && token.expirationSeconds > MAX_TOKEN_SECONDS) {
                out.push(`${at} lives ${token.expirationSeconds} seconds (expirationSeconds), valid long after a pod that leaked it is gone; at most ${MAX_TOKEN_SECONDS}`);
            }
            return out;
        }));
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
            if (!w.pod) return [];
            if (cfg.exemptWorkloads.includes(w.id.workload)) return exemptTokenProblems(w.pod.spec);
            const out = w.pod.spec.automountServiceAccountToken !== false ? ["mounts the service account token (automountServiceAccountToken is not false)"] : [];
            return [...out, ...projectedTokens(w.pod.spec)];
        },
        (w, p) => p.startsWith(EXEMPT)
            ? `${w.label} ${p}; leave audience unset (the API server's) and expirationSeconds at most ${MAX_TOKEN_SECONDS}.`
            : `${w.label} ${p}; set spec.automountServiceAccountToken: false on the pod template and mount no token ` +
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
