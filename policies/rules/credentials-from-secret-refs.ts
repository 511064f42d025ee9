import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { isCredentialName, urlPasswordsIn } from "../lib/credentials";
import { K8sContainer } from "../lib/workloads";
import { workloadRule } from "../lib/rule";
import { arr, isRecord, isUnknown, plain, str } from "../lib/values";
import { describe } from "../lib/workloads";

export interface SecretRefsConfig {
    /** Env var names allowed to carry a literal value even though they look like credentials. */
    allowedLiteralEnv: string[];
}

const defaults: SecretRefsConfig = { allowedLiteralEnv: [] };

/**
 * Literal credentials in Kubernetes containers: the env `value` of a credential-named variable, or
 * any env value that is a URL with an embedded password. One message per finding.
 */
export function literalEnvCredentials(containers: K8sContainer[], cfg: SecretRefsConfig = defaults): string[] {
    const out: string[] = [];
    const allowed = new Set(cfg.allowedLiteralEnv.map((n) => n.toUpperCase()));
    for (const c of containers) {
        for (const e of arr(c.container.env)) {
            if (!isRecord(e)) continue;
            const name = str(e.name);
            if (name === undefined || allowed.has(name.toUpperCase())) continue;
            const raw = e.value;
            if (raw === undefined || raw === null || raw === "") continue;
            const value = str(raw);
            if (isCredentialName(name)) {
                out.push(`container "${c.name}" sets ${name} as a literal value${isUnknown(raw) ? " (computed at deploy time)" : ""}`);
            } else if (value !== undefined && urlPasswordsIn(value).length > 0) {
                out.push(`container "${c.name}" sets ${name} to a URL with an embedded password`);
            }
        }
    }
    return out;
}

/** Credential-named keys or URLs with passwords in a ConfigMap's data. */
export function configMapCredentials(props: Record<string, any>): string[] {
    const out: string[] = [];
    if (!isRecord(props.data)) return out;
    for (const [k, v] of Object.entries(props.data)) {
        const value = str(v);
        if (isCredentialName(k)) {
            out.push(`ConfigMap key ${k} looks like a credential`);
        } else if (value !== undefined && urlPasswordsIn(value).length > 0) {
            out.push(`ConfigMap key ${k} contains a URL with an embedded password`);
        }
    }
    return out;
}

const message = (who: string, finding: string) =>
    `${who}: ${finding}. Literal values end up in the object spec, ` +
    "visible to anyone who can read the workload: put the value in a Secret and reference it with " +
    "env[].valueFrom.secretKeyRef (the guide: \"use Docker secrets for sensitive data\").";

export const credentialsFromSecretRefs: ResourceValidationPolicy = {
    name: "credentials-from-secret-refs",
    description:
        "On Kubernetes, credentials (PASSWORD, SECRET, TOKEN, *KEY, URLs with user:password@) reach pods only " +
        "through Secrets (env valueFrom.secretKeyRef), never as literal env values or ConfigMap data.",
    severity: "high",
    configSchema: {
        properties: {
            allowedLiteralEnv: { type: "array", items: { type: "string" }, default: [] },
        },
    },
    validateResource: [
        workloadRule(defaults, (w, cfg) => literalEnvCredentials(w.containers, cfg), (w, p) => message(w.label, p), ["kubernetes"]),
        validateResourceOfType(k8s.core.v1.ConfigMap, (props, args, reportViolation) => {
            for (const f of configMapCredentials(plain(props))) reportViolation(message(describe(args.type, args.name), f));
        }),
    ],
};
