import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { commandLineCredentials, k8sCommandLine } from "../lib/command-line";
import { readConfig } from "../lib/config";
import { isCredentialName, splitEnv, urlPasswordsIn } from "../lib/credentials";
import { workloadEnv } from "../lib/environment";
import { fileCredentials, isReferenceOrEmpty } from "../lib/file-credentials";
import { workloadRule } from "../lib/rule";
import { arr, isRecord, isUnknown, plain, readField, str } from "../lib/values";
import { describe, DOCKER_NETWORK, DOCKER_VOLUME, isK8sType, K8sContainer } from "../lib/workloads";
import { readingListItems } from "../lib/lists";

export interface SecretRefsConfig {
    /** Env var names allowed to carry a literal value even though they look like credentials. */
    allowedLiteralEnv: string[];
    /**
     * Credential-named annotation keys whose value is the NAME of a Secret, not its content (an
     * ingress-nginx auth or TLS Secret): allowed. A URL with a password or a private key is still reported.
     */
    secretNameAnnotations: string[];
}

/** ingress-nginx annotations naming a Secret ("<namespace>/<name>") the controller reads the credential from. */
export const SECRET_NAME_ANNOTATIONS = [
    "nginx.ingress.kubernetes.io/auth-secret",
    "nginx.ingress.kubernetes.io/auth-tls-secret",
    "nginx.ingress.kubernetes.io/proxy-ssl-secret",
];

const defaults: SecretRefsConfig = { allowedLiteralEnv: [], secretNameAnnotations: SECRET_NAME_ANNOTATIONS };

/**
 * Literal credentials in Kubernetes containers (init containers too, read by the shared
 * `workloadEnv`): the env `value` of a credential-named variable, or any env value that is a URL with
 * an embedded password. One message per finding.
 */
export function literalEnvCredentials(type: string, props: Record<string, any>, cfg: SecretRefsConfig = defaults): string[] {
    const out: string[] = [];
    const allowed = new Set(cfg.allowedLiteralEnv.map((n) => n.toUpperCase()));
    for (const env of workloadEnv(type, props)) {
        const c = env.container;
        if (!c) continue;
        for (const e of env.entries) {
            if (allowed.has(e.name.toUpperCase())) continue;
            const fromConfigMap = isRecord(e.valueFrom?.configMapKeyRef) ? e.valueFrom.configMapKeyRef : undefined;
            if (fromConfigMap && isCredentialName(e.name)) {
                out.push(`container "${c.name}" takes ${e.name} from ConfigMap "${str(fromConfigMap.name) ?? "?"}" key ${str(fromConfigMap.key) ?? "?"}`);
                continue;
            }
            if (e.literal === "empty") continue;
            if (isCredentialName(e.name)) {
                out.push(`container "${c.name}" sets ${e.name} as a literal value${e.literal === "unknown" ? " (computed at deploy time)" : ""}`);
            } else if (e.value !== undefined && urlPasswordsIn(e.value).length > 0) {
                out.push(`container "${c.name}" sets ${e.name} to a URL with an embedded password`);
            } else if (e.value !== undefined && hasPrivateKey(e.value)) {
                out.push(`container "${c.name}" sets ${e.name} to a private key`);
            }
        }
        out.push(...commandLineFindings(c));
    }
    return out;
}

/**
 * Credentials on a container's command line (`command`, `args`), read by `lib/command-line.ts`: a URL
 * with a password, or a credential flag given a literal (`--db-password=x`, `--api-token x`,
 * `--requirepass x`); a `$(VAR)` or `$VAR` reference to an env var (filled from a Secret) is the way
 * to pass one and is fine.
 */
function commandLineFindings(c: K8sContainer): string[] {
    const lines = k8sCommandLine(c);
    return [
        ...lines.filter((l) => urlPasswordsIn(l.text).length > 0).map((l) => `container "${c.name}" passes a URL with an embedded password in ${l.at}`),
        ...commandLineCredentials(lines).map((f) => `container "${c.name}" passes a literal credential in ${f.at} (${f.flag})`),
    ];
}

const PRIVATE_KEY = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/;

/** PEM private key material (RSA, EC, PKCS#8, encrypted or not, OpenSSH). */
export function hasPrivateKey(text: string): boolean {
    return PRIVATE_KEY.test(text);
}

/**
 * Credential-named keys, URLs with passwords or private keys in a ConfigMap's data and binaryData
 * (base64), and (session 42) a credential-named setting with a literal value inside a file held under
 * any key (`app.properties` with `db.password=x`, a `redis.conf` with `requirepass x`, a `.env`, YAML,
 * JSON, INI, a connection string; `lib/file-credentials.ts`): a reference (`${VAR}`, `$(VAR)`,
 * `{{ .Values.x }}`), an empty value or a file path passes, and so does a URL whose password is one.
 */
export function configMapCredentials(props: Record<string, any>): string[] {
    const out: string[] = [];
    const entries: [string, string | undefined, string][] = [];
    if (isRecord(props.data)) for (const [k, v] of Object.entries(props.data)) entries.push([k, str(v), ""]);
    if (isRecord(props.binaryData)) {
        for (const [k, v] of Object.entries(props.binaryData)) {
            const encoded = str(v);
            entries.push([k, encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("latin1"), " (binaryData)"]);
        }
    }
    for (const [k, value, where] of entries) {
        if (isCredentialName(k)) {
            out.push(`ConfigMap key ${k}${where} looks like a credential`);
            continue;
        }
        if (value === undefined) continue;
        if (urlPasswordsIn(value).some((pw) => !isReferenceOrEmpty(pw))) {
            out.push(`ConfigMap key ${k}${where} contains a URL with an embedded password`);
        } else if (hasPrivateKey(value)) {
            out.push(`ConfigMap key ${k}${where} holds a private key`);
        }
        for (const f of fileCredentials(value)) {
            out.push(`ConfigMap key ${k}${where} sets ${f.name} to a literal value in its content (line ${f.line})`);
        }
    }
    return out;
}

/**
 * Credentials in the metadata of any Kubernetes object and of the pod templates inside it: a
 * credential-named annotation or label key with a value (an annotation cannot reference a Secret,
 * so any value is a literal), or a URL with a password or a private key in any value. Metadata is
 * what the least privileged readers see (`kubectl get`, metadata-only watches, events, audit logs).
 */
export function metadataCredentials(props: Record<string, any>, cfg: SecretRefsConfig = defaults): string[] {
    const out: string[] = [];
    const secretNames = new Set(cfg.secretNameAnnotations);
    // `props` may be the engine's bag: only the metadata is copied (plain), not the specs around it.
    const at = (...path: string[]) => plain(path.reduce<unknown>((v, k) => readField(v, k), props));
    const places: [string, unknown][] = [
        ["metadata", at("metadata")],
        ["pod template", at("spec", "template", "metadata")],
        ["job template", at("spec", "jobTemplate", "metadata")],
        ["pod template", at("spec", "jobTemplate", "spec", "template", "metadata")],
    ];
    for (const [place, metadata] of places) {
        if (!isRecord(metadata)) continue;
        for (const [field, kind] of [["annotations", "annotation"], ["labels", "label"]] as const) {
            const entries = metadata[field];
            if (!isRecord(entries)) continue;
            for (const [key, raw] of Object.entries(entries)) {
                const finding = keyValueCredential(`${place} ${kind} ${key}`, key, raw, kind === "annotation" && secretNames.has(key));
                if (finding) out.push(finding);
            }
        }
    }
    return out;
}

/**
 * One metadata entry (an annotation or label): a URL with a password or a private key in its value,
 * or a credential-named key with any value (neither place can reference a Secret, so every value is a
 * literal) unless the key is known to hold a Secret's name (`namesSecret`).
 */
function keyValueCredential(at: string, key: string, raw: unknown, namesSecret: boolean): string | undefined {
    if (raw === undefined || raw === null || raw === "") return undefined;
    const value = str(raw);
    if (value !== undefined && urlPasswordsIn(value).length > 0) return `${at} contains a URL with an embedded password`;
    if (value !== undefined && hasPrivateKey(value)) return `${at} holds a private key`;
    if (isCredentialName(key) && !namesSecret) {
        return `${at} looks like a credential and has a literal value${isUnknown(raw) ? " (computed at deploy time)" : ""}`;
    }
    return undefined;
}

/**
 * Credentials in a Docker container's labels (`[{ label, value }]`), judged as Kubernetes labels
 * are: `docker inspect`, `docker ps --filter label=...` and the engine's events show them to anyone
 * who can talk to the engine, and a label cannot come from a secret.
 */
export function dockerLabelCredentials(props: Record<string, any>): string[] {
    const out: string[] = [];
    for (const entry of arr(props.labels)) {
        if (!isRecord(entry)) continue;
        const key = str(entry.label);
        if (key === undefined) continue;
        const finding = keyValueCredential(`label ${key}`, key, entry.value, false);
        if (finding) out.push(finding);
    }
    return out;
}

/** mount.cifs' `credentials=<file>`: the path of the file holding the username and password, the way to keep them out of the options. */
const namesCredentialsFile = (name: string, value: string) => name.toLowerCase() === "credentials" && value.startsWith("/");

/**
 * Credentials in a Docker network's or volume's labels, and in its driver's options (a volume's
 * `driverOpts`, a network's `options`): `docker volume inspect` and `docker network inspect` show
 * both to anyone who can reach the engine. A driver option is read as a mount does: its value may be
 * a comma-separated list of `key=value` options (a CIFS or NFS volume's `o: "username=u,password=p"`),
 * each judged by its key like a label; a URL with a password or a private key anywhere is reported.
 */
export function dockerObjectCredentials(type: string, props: Record<string, any>): string[] {
    const out = dockerLabelCredentials(props);
    const field = type === DOCKER_VOLUME ? "driverOpts" : "options";
    const opts = props[field];
    if (!isRecord(opts)) return out;
    for (const [key, raw] of Object.entries(opts)) {
        const finding = keyValueCredential(`${field} ${key}`, key, raw, false);
        if (finding) { out.push(finding); continue; }
        const value = str(raw);
        if (value === undefined) continue;
        for (const option of value.split(",")) {
            const [rawName, optionValue] = splitEnv(option) ?? [];
            if (rawName === undefined || optionValue === undefined) continue;
            const name = rawName.trim();
            if (!isCredentialName(name) || optionValue === "" || namesCredentialsFile(name, optionValue)) continue;
            out.push(`${field} ${key} holds a literal credential (${name}=)`);
        }
    }
    return out;
}

const message = (who: string, finding: string) =>
    `${who}: ${finding}. Literal values end up in the object spec, ` +
    "visible to anyone who can read the workload: put the value in a Secret and reference it with " +
    "env[].valueFrom.secretKeyRef (the guide: \"use Docker secrets for sensitive data\").";

const configFileMessage = (who: string, finding: string) =>
    `${who}: ${finding}. A ConfigMap is read by whoever reads the namespace's configuration (kubectl describe, ` +
    "metadata and config watchers) and is never encrypted at rest: keep the file in a Secret (mounted the same way), or write a " +
    "reference in it (${VAR}, $(VAR)) that the process fills from an env var taken with env[].valueFrom.secretKeyRef.";

const dockerMessage = (who: string, finding: string) =>
    `${who}: ${finding}. Container labels are shown by docker inspect and docker ps to anyone who can reach the ` +
    "engine and cannot come from a secret: remove it from the labels and give the container the credential as an env " +
    "var or uploaded file from a generated value or `pulumi config set --secret`.";

const dockerObjectMessage = (who: string, finding: string) =>
    `${who}: ${finding}. docker network inspect and docker volume inspect show labels and driver options to anyone who can ` +
    "reach the engine, and neither can come from a secret: keep the credential out of them (a CIFS volume reads it from a " +
    "`credentials=` file; a volume plugin can take it from a secret store).";

export const credentialsFromSecretRefs: ResourceValidationPolicy = {
    name: "credentials-from-secret-refs",
    description:
        "On Kubernetes, credentials (PASSWORD, SECRET, TOKEN, *KEY, URLs with user:password@, private keys) reach pods only " +
        "through Secrets (env valueFrom.secretKeyRef), never as literal env values, ConfigMap data (files inside it included), literals on the command line " +
        "or annotations and labels of any object; on Docker, never in a container's labels nor in a network's or volume's " +
        "labels or driver options.",
    severity: "high",
    configSchema: {
        properties: {
            allowedLiteralEnv: { type: "array", items: { type: "string" }, default: [] },
            secretNameAnnotations: { type: "array", items: { type: "string" }, default: SECRET_NAME_ANNOTATIONS },
        },
    },
    // Session 53: a *List's items are the objects the API server applies, each judged as declared alone (lib/lists.ts).
    validateResource: readingListItems([
        workloadRule(defaults, (w, cfg) => literalEnvCredentials(w.type, w.props, cfg), (w, p) => message(w.label, p), ["kubernetes"]),
        workloadRule(defaults, (w) => dockerLabelCredentials(w.props), (w, p) => dockerMessage(w.label, p), ["docker"]),
        (args, reportViolation) => {
            if (args.type !== DOCKER_NETWORK && args.type !== DOCKER_VOLUME) return;
            for (const f of dockerObjectCredentials(args.type, plain(args.props))) reportViolation(dockerObjectMessage(describe(args.type, args.name), f));
        },
        validateResourceOfType(k8s.core.v1.ConfigMap, (props, args, reportViolation) => {
            for (const f of configMapCredentials(plain(props))) {
                reportViolation((f.includes(" in its content (line ") ? configFileMessage : message)(describe(args.type, args.name), f));
            }
        }),
        (args, reportViolation) => {
            if (!isK8sType(args.type)) return args.notApplicable("only Kubernetes objects");
            for (const f of metadataCredentials(args.props, readConfig(args, defaults))) {
                reportViolation(message(describe(args.type, args.name), f));
            }
        },
    ]),
};
