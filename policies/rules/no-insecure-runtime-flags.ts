import { StackValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { controllerSettings } from "../lib/controller-config";
import { isCredentialName, splitEnv } from "../lib/credentials";
import { controllerConfigMaps } from "../lib/ingress-nginx";
import { Workload, workloadOf, workloadTarget } from "../lib/rule";
import { environmentSourceEntries, workloadEnv } from "../lib/environment";
import { plainResources } from "../lib/stack";
import { arr, str } from "../lib/values";
import { describe, K8S, objectName } from "../lib/workloads";

/**
 * Settings that switch a process's own safety off at run time, whatever the container's security
 * context says (session 38's configuration hunt: the pack judged none of them):
 * - Node's inspector (`--inspect`, `--inspect-brk`, `--inspect-wait`, `--inspect-port`, the old
 *   `--debug-port`), in `NODE_OPTIONS` or on the command line: whoever reaches its port runs any code in
 *   the process, with the service's credentials; the Docker runtime and the network policies do not
 *   know the port exists;
 * - `--insecure-http-parser`: Node accepts malformed HTTP, the request smuggling its parser otherwise
 *   refuses behind Nginx or the ingress controller;
 * - `NODE_TLS_REJECT_UNAUTHORIZED=0`: every TLS connection the process opens (Binance, the card
 *   processor, the SMTP relay, Telegram) accepts any certificate, so anyone on the path reads the
 *   exchange keys and card processor secrets it sends;
 * - notification-service's `SMTP_REQUIRE_TLS` or `SMTP_TLS_REJECT_UNAUTHORIZED` set false (as the service
 *   kit reads a boolean: false, 0, no, off, any case): the relay's password and the mails go in clear,
 *   or to any certificate;
 * - Prometheus's `--web.enable-admin-api`: unauthenticated endpoints that delete series and write
 *   snapshots, for every client Prometheus admits (Grafana, the Docker admin port); session 48: and
 *   `--web.enable-lifecycle`, whose unauthenticated `POST /-/quit` stops it (no alert fires after).
 */
const NODE_FLAGS = ["--inspect", "--inspect-brk", "--inspect-wait", "--inspect-port", "--debug-port", "--insecure-http-parser"];
const PROCESS_FLAGS = [...NODE_FLAGS, "--web.enable-admin-api", "--web.enable-lifecycle"];

function flagIn(word: string, flags: readonly string[]): string | undefined {
    const bare = word.replace(/^["']+|["']+$/g, "");
    return flags.find((f) => bare === f || bare.startsWith(`${f}=`));
}

/** What the service kit reads as false (services/src/kit/config.ts). */
const KIT_FALSE = ["false", "0", "no", "off"];
const SMTP_TLS_SETTINGS: Record<string, string> = {
    SMTP_REQUIRE_TLS: "lets notification-service log in to the SMTP relay and send without STARTTLS",
    SMTP_TLS_REJECT_UNAUTHORIZED: "lets notification-service accept any certificate from the SMTP relay",
};

/** What is wrong with one environment setting (`name=value`), if anything. */
export function insecureSetting(name: string, value: string): string | undefined {
    if (name === "NODE_TLS_REJECT_UNAUTHORIZED" && value === "0") {
        return "sets NODE_TLS_REJECT_UNAUTHORIZED=0, which turns off certificate verification of every TLS connection the process opens";
    }
    if (Object.hasOwn(SMTP_TLS_SETTINGS, name) && KIT_FALSE.includes(value.trim().toLowerCase())) return `sets ${name}=${value}, which ${SMTP_TLS_SETTINGS[name]}`;
    if (name === "NODE_OPTIONS") {
        const flag = value.split(/\s+/).map((w) => flagIn(w, NODE_FLAGS)).find((f) => f !== undefined);
        if (flag !== undefined) return `passes ${flag} in NODE_OPTIONS`;
    }
    return undefined;
}

/** Problems of a command line (command, args, entrypoint), read word by word (a `sh -c` script too). */
function commandProblems(where: string, parts: unknown[]): string[] {
    const out: string[] = [];
    for (const part of parts) {
        const text = str(part);
        if (text === undefined) continue;
        for (const word of text.split(/\s+/)) {
            const flag = flagIn(word, PROCESS_FLAGS);
            if (flag !== undefined) out.push(`${where} passes ${flag}`);
            const kv = splitEnv(word.replace(/^["']+|["']+$/g, ""));
            const setting = kv && /^[A-Z_][A-Z0-9_]*$/.test(kv[0]) ? insecureSetting(kv[0], kv[1]) : undefined;
            if (setting !== undefined) out.push(`${where} ${setting}`);
        }
    }
    return out;
}

export interface RuntimeFlagsConfig {
    /**
     * Workloads (their `trading.io/workload` name, else the resource's) and environment sources
     * (ConfigMap/Secret names) allowed a debug or trace LOG_LEVEL on Kubernetes (session 42), and
     * `DEBUG` or `NODE_DEBUG` output on either target (session 43); none by default.
     */
    verboseLogWorkloads: string[];
}

const defaults: RuntimeFlagsConfig = { verboseLogWorkloads: [] };

/** Log levels (pino's, as the service kit reads LOG_LEVEL) that write request detail the info level leaves out. */
const VERBOSE_LOG_LEVELS = ["debug", "trace"];

/** A verbose LOG_LEVEL setting (session 42), judged on Kubernetes (the production target) only. */
export function verboseLogLevel(name: string, value: string): string | undefined {
    if (name !== "LOG_LEVEL" || !VERBOSE_LOG_LEVELS.includes(value.trim().toLowerCase())) return undefined;
    return `sets LOG_LEVEL=${value.trim()}`;
}

/**
 * Session 43: `DEBUG` (the `debug` module's namespaces, `*` for all, comma- or space-separated; a
 * `-name` only turns one off) and `NODE_DEBUG` (Node core's sections: http, net, tls, ...) turn on
 * output that bypasses pino altogether, its level and its redaction: ioredis, a `debug` user, writes
 * every command with its arguments, the DragonflyDB AUTH password among them. Judged on both targets
 * (a Docker stack's logs are read as a cluster's are); a value that turns nothing on passes (empty,
 * only exclusions, a switch spelt off: false, 0, no, off, none).
 */
const DEBUG_VARIABLES = ["DEBUG", "NODE_DEBUG"];
const NOTHING_ON = ["false", "0", "no", "off", "none"];

export function debugOutputSetting(name: string, value: string): string | undefined {
    if (!DEBUG_VARIABLES.includes(name)) return undefined;
    const on = value.split(/[\s,]+/).filter((n) => n !== "" && !n.startsWith("-") && !NOTHING_ON.includes(n.toLowerCase()));
    return on.length === 0 ? undefined : `sets ${name}=${value.trim()}`;
}

const VERBOSE_FIX = ": verbose logs carry request detail the info level leaves out (bodies, headers, identifiers, query parameters) to every reader " +
    "of the cluster's logs; use info (trading:logLevel) on this stack, or list the workload in verboseLogWorkloads for the time of an investigation.";

const DEBUG_FIX = ": DEBUG (the debug module) and NODE_DEBUG write library and Node internals to the logs past pino's level and redaction " +
    "(ioredis's debug output carries every command's arguments, the DragonflyDB AUTH password among them) for every reader of the logs; " +
    "remove it, or list the workload in verboseLogWorkloads for the time of an investigation.";

/** `NAME=value` words of a command line (`env DEBUG=* node ...`, a `sh -c` script) that turn debug output on. */
function commandDebugSettings(where: string, parts: unknown[]): string[] {
    const out: string[] = [];
    for (const text of parts.map(str)) {
        for (const word of text?.split(/\s+/) ?? []) {
            const kv = splitEnv(word.replace(/^["']+|["']+$/g, ""));
            const p = kv ? debugOutputSetting(kv[0], kv[1].replace(/^["']+|["']+$/g, "")) : undefined;
            if (p !== undefined) out.push(`${where} ${p}`);
        }
    }
    return out;
}

/**
 * A debug or trace LOG_LEVEL in a Kubernetes workload's containers (literal env values), and DEBUG
 * or NODE_DEBUG output in any workload's env or command line, unless the workload is allowed.
 */
export function verboseLogProblems(w: Workload, cfg: RuntimeFlagsConfig = defaults): string[] {
    if (cfg.verboseLogWorkloads.includes(w.id.workload) || cfg.verboseLogWorkloads.includes(w.name)) return [];
    const out: string[] = [];
    for (const env of workloadEnv(w.type, w.props)) {
        const who = env.container ? `container "${env.container.name}"` : "envs";
        for (const e of env.entries) {
            if (e.value === undefined) continue;
            const p = (w.target === "kubernetes" ? verboseLogLevel(e.name, e.value) : undefined) ?? debugOutputSetting(e.name, e.value);
            if (p !== undefined) out.push(`${who} ${p}`);
        }
        if (env.container) {
            const c = env.container;
            out.push(...commandDebugSettings(`container "${c.name}" command`, arr(c.container.command)), ...commandDebugSettings(`container "${c.name}" args`, arr(c.container.args)));
        }
    }
    if (w.target === "docker") out.push(...commandDebugSettings("command", arr(w.props.command)), ...commandDebugSettings("entrypoints", arr(w.props.entrypoints)));
    return [...new Set(out)];
}

export function insecureRuntimeFlagProblems(w: Workload): string[] {
    const out: string[] = [];
    for (const env of workloadEnv(w.type, w.props)) {
        for (const e of env.entries) {
            const p = e.value !== undefined ? insecureSetting(e.name, e.value) : undefined;
            if (p !== undefined) out.push(env.container ? `container "${env.container.name}" ${p}` : `envs ${p}`);
        }
        if (env.container) {
            const c = env.container;
            out.push(...commandProblems(`container "${c.name}" command`, arr(c.container.command)), ...commandProblems(`container "${c.name}" args`, arr(c.container.args)));
        }
    }
    if (w.target === "docker") out.push(...commandProblems("command", arr(w.props.command)), ...commandProblems("entrypoints", arr(w.props.entrypoints)));
    return [...new Set(out)];
}

/**
 * The entries of a ConfigMap or Secret named as environment variables: a pod takes them as its
 * environment with `envFrom` (or one by `configMapKeyRef`/`secretKeyRef`), where the workload's own
 * env shows nothing. Secret `data` is base64.
 */
export function environmentSourceProblems(type: string, props: Record<string, any>, cfg: RuntimeFlagsConfig = defaults, name = ""): string[] {
    const out: string[] = [];
    const verboseAllowed = cfg.verboseLogWorkloads.includes(objectName(props, name)) || cfg.verboseLogWorkloads.includes(name);
    for (const { field, name: key, value } of environmentSourceEntries(type, props)) {
        const p = value === undefined ? undefined : insecureSetting(key, value) ?? (verboseAllowed ? undefined : verboseLogLevel(key, value) ?? debugOutputSetting(key, value));
        if (p !== undefined) out.push(`${field}.${key} ${p} in every pod taking it as its environment`);
    }
    return out;
}

/**
 * Session 50: ingress-nginx's access log formats (the controller ConfigMap's `log-format-upstream` and
 * `log-format-stream`; session 54: of the ConfigMap a declared controller reads, any by its keys when the stack declares none). A variable carrying what the
 * client or a backend sends to prove who is who writes it into the controller's log for every request,
 * where whoever reads the logs replays it: `$http_authorization` (the JWT, Basic credentials), the
 * cookies (`$http_cookie`, `$cookie_<name>`, the backends' `Set-Cookie`), `$request_body` (logins,
 * orders), and any credential-named header or query argument (`$http_x_api_key`, `$arg_token`).
 */
export function credentialLogVariables(format: string): string[] {
    const variables = [...format.matchAll(/\$(?:\{(\w+)\}|(\w+))/g)].map((m) => (m[1] ?? m[2]).toLowerCase());
    return [...new Set(variables.filter((v) => /^(http_(proxy_)?authorization|http_cookie|cookie_\w+|request_body|(sent|upstream)_http_set_cookie)$/.test(v) ||
        (/^(http|arg|sent_http|upstream_http)_/.test(v) && isCredentialName(v))))];
}

export function controllerLogProblems(props: Record<string, any>): string[] {
    const data = controllerSettings(props); // session 51: a key in any case, as the controller reads it
    return ["log-format-upstream", "log-format-stream"].flatMap((key) => {
        const found = credentialLogVariables(data.get(key) ?? "");
        return found.length ? [`sets ${key} with ${found.map((v) => `$${v}`).join(", ")}, which writes every client's credentials into the ingress controller's access log`] : [];
    });
}

const LOG_FIX = "; log who and what without the secrets (ingress-nginx's default format, $remote_user, $request_id), and never a request's Authorization header, cookies or body.";

const messageOf = (who: string, p: string) => `${who} ${p}${p.includes("sets LOG_LEVEL=") ? VERBOSE_FIX : /sets (NODE_)?DEBUG=/.test(p) ? DEBUG_FIX : FIX}`;

const FIX = "; remove it: a debugger port runs any code sent to it, an unverified TLS connection hands the " +
    "credentials it carries to whoever is on the path, and Prometheus's admin and lifecycle APIs delete data or stop it for any client (debug a copy " +
    "outside the stack; give a private CA with NODE_EXTRA_CA_CERTS instead of turning verification off).";

export const noInsecureRuntimeFlags: StackValidationPolicy = {
    name: "no-insecure-runtime-flags",
    description:
        "No process runs with its own safety switched off: no Node inspector (--inspect*, in NODE_OPTIONS or the command line), " +
        "no --insecure-http-parser, no NODE_TLS_REJECT_UNAUTHORIZED=0, no SMTP without (verified) TLS, no Prometheus --web.enable-admin-api or --web.enable-lifecycle; " +
        "no Kubernetes workload logs at LOG_LEVEL debug or trace, and no workload turns on DEBUG or NODE_DEBUG output, unless listed in verboseLogWorkloads; " +
        "no ingress-nginx access log format (the controller ConfigMap's: the one a declared controller's --configmap names) writes the clients' credentials ($http_authorization, cookies, $request_body).",
    severity: "high",
    configSchema: {
        properties: {
            verboseLogWorkloads: { type: "array", items: { type: "string" }, default: [] },
        },
    },
    // Session 54: a stack policy, to read as the ingress-nginx controller's access log formats only the ConfigMap a declared controller
    // reads (lib/ingress-nginx.ts controllerConfigMaps); every workload, ConfigMap and Secret is judged alone as before, a *List's items
    // (session 53) too, each with its own kind and name (plainResources).
    validateStack: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        const resources = plainResources(args.resources);
        const isController = controllerConfigMaps(resources);
        for (const r of resources) {
            const target = workloadTarget(r.type);
            if (target !== undefined) {
                const w = workloadOf(target, r.type, r.name, r.props);
                for (const p of [...insecureRuntimeFlagProblems(w), ...verboseLogProblems(w, cfg)]) reportViolation(messageOf(w.label, p), r.urn);
            } else if (r.type === K8S.configMap || r.type === K8S.secret) {
                for (const p of environmentSourceProblems(r.type, r.props, cfg, r.name)) reportViolation(messageOf(describe(r.type, r.name), p), r.urn);
                if (r.type === K8S.configMap && isController(r)) {
                    for (const p of controllerLogProblems(r.props)) reportViolation(`${describe(r.type, r.name)} ${p}${LOG_FIX}`, r.urn);
                }
            }
        }
    },
};
