import { ResourceValidationPolicy } from "@pulumi/policy";
import { commandLineCredentials, dockerCommandLine, k8sCommandLine } from "../lib/command-line";
import { readConfig } from "../lib/config";
import { credentialsEqualToUser, guideSecretsIn, isCredentialName, isWeakValue, turnsAuthOff, urlPasswordsIn, urlsWithUserAsPassword } from "../lib/credentials";
import { workloadEnv } from "../lib/environment";
import { fileCredentials } from "../lib/file-credentials";
import { arr, decodeBase64, isRecord, plain, str, walkStrings } from "../lib/values";
import { describe, DOCKER_CONTAINER, isK8sWorkload, K8S, podContainers, podTemplate } from "../lib/workloads";

export interface NoDefaultCredentialsConfig {
    /** More forbidden literals (substring match), e.g. values leaked elsewhere. */
    extraForbiddenValues: string[];
    /** More weak values (exact match on credential-shaped values). */
    extraWeakValues: string[];
}

const defaults: NoDefaultCredentialsConfig = { extraForbiddenValues: [], extraWeakValues: [] };

export interface CredentialFinding {
    path: string;
    problem: string;
    /** A setting that turns authentication off (reported with its own fix). */
    authOff?: boolean;
}

/**
 * Every string in the inputs (and base64 Secret data / upload contents, decoded) is scanned for
 * the guide's published literals; credential-shaped values (credential env vars, Secret entries,
 * passwords inside URLs) are also checked against a list of weak values.
 */
export function findDefaultCredentials(
    type: string, props: Record<string, any>, cfg: NoDefaultCredentialsConfig = defaults,
): CredentialFinding[] {
    const findings: CredentialFinding[] = [];
    const seen = new Set<string>();
    const add = (path: string, problem: string) => {
        const key = `${path}|${problem}`;
        if (!seen.has(key)) {
            seen.add(key);
            findings.push({ path, problem });
        }
    };
    const checkText = (s: string, path: string) => {
        for (const lit of guideSecretsIn(s, cfg.extraForbiddenValues)) {
            add(path, `the deployment guide's published default "${lit}"`);
        }
        if (urlsWithUserAsPassword(s) > 0) add(path, "a URL whose password is its user name");
        for (const pw of urlPasswordsIn(s)) {
            // The password as the client sends it, percent-decoded: `ai%5Ftrading...` is the guide's literal too.
            const guide = guideSecretsIn(pw, cfg.extraForbiddenValues).filter((lit) => !s.toLowerCase().includes(lit.toLowerCase()));
            for (const lit of guide) add(path, `the deployment guide's published default "${lit}" (percent-encoded in a URL's password)`);
            if (guideSecretsIn(pw, cfg.extraForbiddenValues).length === 0 && isWeakValue(pw, cfg.extraWeakValues)) {
                add(path, "a URL whose password is a weak, well-known value");
            }
        }
    };
    walkStrings(props, checkText);
    // Session 42: a setting inside a file (a Docker upload, a Secret or ConfigMap entry holding a redis.conf,
    // app.properties, .env, YAML, JSON) given a weak value, as a credential env var would be.
    const checkFile = (text: string, path: string) => {
        for (const f of fileCredentials(text)) {
            // A guide literal is reported as such by checkText above.
            if (guideSecretsIn(f.value, cfg.extraForbiddenValues).length === 0 && isWeakValue(f.value, cfg.extraWeakValues)) add(`${path} line ${f.line} (${f.name})`, "a weak, well-known value");
        }
    };
    const entries = (field: string, base64: boolean) => {
        if (!isRecord(props[field])) return;
        for (const [k, v] of Object.entries(props[field])) {
            const text = str(v) === undefined ? undefined : base64 ? decodeBase64(v as string) : (v as string);
            if (text !== undefined) checkFile(text, `${field}.${k}${base64 ? " (base64-decoded)" : ""}`);
        }
    };
    if (type === K8S.secret) { entries("stringData", false); entries("data", true); }
    if (type === K8S.configMap) { entries("data", false); entries("binaryData", true); }

    // Base64-carried values: Kubernetes Secret `data` and ConfigMap `binaryData`, Docker uploads' contentBase64.
    if (type === K8S.configMap && isRecord(props.binaryData)) {
        for (const [k, v] of Object.entries(props.binaryData)) {
            const decoded = str(v) !== undefined ? decodeBase64(v as string) : undefined;
            if (decoded !== undefined) checkText(decoded, `binaryData.${k} (base64-decoded)`);
        }
    }
    if (type === K8S.secret && isRecord(props.data)) {
        for (const [k, v] of Object.entries(props.data)) {
            const decoded = str(v) !== undefined ? decodeBase64(v as string) : undefined;
            if (decoded === undefined) continue;
            checkText(decoded, `data.${k} (base64-decoded)`);
            // Empty is weak only where the entry is a credential (an empty ca.crt is just empty).
            if (isWeakValue(decoded, cfg.extraWeakValues) && (decoded.trim() !== "" || isCredentialName(k))) add(`data.${k} (base64-decoded)`, decoded.trim() === "" ? "an empty credential" : "a weak, well-known value");
        }
    }
    // A value already reported as weak or as the guide's is not reported again for equalling its user name.
    const knownWeak = (entries: Array<[string, string]>, name: string) => entries.filter(([n]) => n === name)
        .some(([, v]) => isWeakValue(v, cfg.extraWeakValues) || guideSecretsIn(v, cfg.extraForbiddenValues).length > 0);
    if (type === K8S.secret) {
        const known = (["stringData", "data"] as const).flatMap((field) => Object.entries(isRecord(props[field]) ? props[field] : {})
            .flatMap(([k, v]): Array<[string, string]> => { const t = str(v) === undefined ? undefined : field === "data" ? decodeBase64(v as string) : (v as string); return t === undefined ? [] : [[k, t]]; }));
        for (const [name, user] of credentialsEqualToUser(known).filter(([n]) => !knownWeak(known, n))) add(`entry ${name}`, `a password equal to the user name beside it (${user})`);
    }
    if (type === K8S.secret && isRecord(props.stringData)) {
        for (const [k, v] of Object.entries(props.stringData)) {
            const s = str(v);
            if (s !== undefined && isWeakValue(s, cfg.extraWeakValues) && (s.trim() !== "" || isCredentialName(k))) add(`stringData.${k}`, s.trim() === "" ? "an empty credential" : "a weak, well-known value");
        }
    }
    if (type === DOCKER_CONTAINER) {
        arr(props.uploads).forEach((u, i) => {
            const b64 = isRecord(u) ? str(u.contentBase64) : undefined;
            const decoded = b64 !== undefined ? decodeBase64(b64) : undefined;
            if (decoded !== undefined) checkText(decoded, `uploads[${i}].contentBase64 (decoded)`);
            if (decoded !== undefined) checkFile(decoded, `uploads[${i}].contentBase64 (decoded)`);
            const content = isRecord(u) ? str(u.content) : undefined;
            if (content !== undefined) checkFile(content, `uploads[${i}].content`);
            // Session 44: a file holding one credential whole, named for it (the Docker runtime's
            // /run/secrets/postgres_password, read through POSTGRES_PASSWORD_FILE): as that variable would be.
            const file = isRecord(u) ? str(u.file) : undefined;
            const base = file?.split("/").pop() ?? "";
            const whole = content ?? decoded;
            if (whole !== undefined && isCredentialName(base)) {
                const value = whole.replace(/\r?\n$/, "");
                if (guideSecretsIn(value, cfg.extraForbiddenValues).length === 0 && isWeakValue(value, cfg.extraWeakValues)) {
                    add(`uploads[${i}] (${file})`, value.trim() === "" ? "an empty credential" : "a weak, well-known value");
                }
            }
        });
    }
    // A credential flag on a command line (`redis-server --requirepass changeme`), as a credential env var.
    const containers = isK8sWorkload(type) ? podContainers(podTemplate(type, props)?.spec ?? {}) : [];
    const commandLines = [...dockerCommandLine(type, props), ...containers.flatMap((c) => k8sCommandLine(c).map((l) => ({ ...l, at: `container "${c.name}" ${l.at}` })))];
    for (const f of commandLineCredentials(commandLines)) {
        if (guideSecretsIn(f.value, cfg.extraForbiddenValues).length === 0 && isWeakValue(f.value, cfg.extraWeakValues)) add(`${f.at} (${f.flag})`, "a weak, well-known value");
    }
    for (const env of workloadEnv(type, props)) {
        const known = env.entries.flatMap((e): Array<[string, string]> => (e.value === undefined ? [] : [[e.name, e.value]]));
        for (const [name, user] of credentialsEqualToUser(known).filter(([n]) => !knownWeak(known, n))) add(`${env.container ? `container "${env.container.name}" env` : "envs"} ${name}`, `a password equal to the user name beside it (${user})`);
        for (const e of env.entries) {
            if (e.value === undefined) continue;
            const where = env.container ? `container "${env.container.name}" env` : `envs[${e.index}]`;
            if (isCredentialName(e.name) && isWeakValue(e.value, cfg.extraWeakValues)) {
                add(env.container ? `${where} ${e.name}` : `${where} (${e.name})`, e.value.trim() === "" ? "an empty credential" : "a weak, well-known value");
            }
            if (turnsAuthOff(e.name, e.value)) findings.push({ path: where, problem: `${e.name}=${e.value}`, authOff: true });
        }
    }
    return findings;
}

export const noDefaultCredentials: ResourceValidationPolicy = {
    name: "no-default-credentials",
    description:
        "No resource may carry a credential published in the deployment guide (ai_trading_secure_pass_2024, " +
        "admin123, the sample JWT secret, the your_*_here API key placeholders, ...) or a weak well-known password.",
    severity: "critical",
    configSchema: {
        properties: {
            extraForbiddenValues: { type: "array", items: { type: "string" }, default: [] },
            extraWeakValues: { type: "array", items: { type: "string" }, default: [] },
        },
    },
    validateResource: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        const props = plain(args.props);
        for (const f of findDefaultCredentials(args.type, props, cfg)) {
            if (f.authOff) {
                reportViolation(`${describe(args.type, args.name)} turns authentication off with ${f.problem} at ${f.path}: every client gets in ` +
                    "without a credential; remove the setting and give the server a generated password (random.RandomPassword, through a Secret on Kubernetes).");
                continue;
            }
            reportViolation(
                `${describe(args.type, args.name)} has ${f.problem} at ${f.path}. Published or guessable ` +
                "credentials must be treated as compromised: generate the value with random.RandomPassword " +
                "(length >= 32) or set it with `pulumi config set --secret`, and on Kubernetes pass it through a Secret.",
            );
        }
    },
};
