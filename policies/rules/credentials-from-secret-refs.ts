import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { isCredentialName, urlPasswordsIn } from "../lib/credentials";
import { arr, isRecord, isUnknown, str, unwrap } from "../lib/values";
import { describe, isK8sWorkload, K8S, podContainers, podTemplate } from "../lib/workloads";

export interface SecretRefsConfig {
    /** Env var names allowed to carry a literal value even though they look like credentials. */
    allowedLiteralEnv: string[];
}

const defaults: SecretRefsConfig = { allowedLiteralEnv: [] };

/**
 * Literal credentials in Kubernetes pod specs (env `value` of a credential-named variable, or any
 * env value that is a URL with an embedded password) and in ConfigMaps. Returns one message per finding.
 */
export function literalCredentials(type: string, props: Record<string, any>, cfg: SecretRefsConfig = defaults): string[] {
    const out: string[] = [];
    const allowed = new Set(cfg.allowedLiteralEnv.map((n) => n.toUpperCase()));
    if (isK8sWorkload(type)) {
        const tmpl = podTemplate(type, props);
        for (const c of tmpl ? podContainers(tmpl.spec) : []) {
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
    }
    if (type === K8S.configMap && isRecord(props.data)) {
        for (const [k, v] of Object.entries(props.data)) {
            const value = str(v);
            if (isCredentialName(k)) {
                out.push(`ConfigMap key ${k} looks like a credential`);
            } else if (value !== undefined && urlPasswordsIn(value).length > 0) {
                out.push(`ConfigMap key ${k} contains a URL with an embedded password`);
            }
        }
    }
    return out;
}

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
    validateResource: (args, reportViolation) => {
        if (!isK8sWorkload(args.type) && args.type !== K8S.configMap) {
            args.notApplicable("only Kubernetes workloads and ConfigMaps");
        }
        for (const finding of literalCredentials(args.type, unwrap(args.props), readConfig(args, defaults))) {
            reportViolation(
                `${describe(args.type, args.name)}: ${finding}. Literal values end up in the object spec, ` +
                "visible to anyone who can read the workload: put the value in a Secret and reference it with " +
                "env[].valueFrom.secretKeyRef (the guide: \"use Docker secrets for sensitive data\").",
            );
        }
    },
};
