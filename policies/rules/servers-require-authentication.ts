import { StackValidationPolicy } from "@pulumi/policy";
import { parseImageRef } from "../../catalog/images";
import { turnsAuthOff } from "../lib/credentials";
import { environmentSourceEntries, findEnvironmentSource, referencedValue, workloadEnv } from "../lib/environment";
import { FileView, workloadFile } from "../lib/files";
import { stackWorkloads, Workload } from "../lib/rule";
import { plainResources, StackResource } from "../lib/stack";
import { arr, isUnknown, str } from "../lib/values";
import { K8sContainer, namespaceOf } from "../lib/workloads";

/**
 * Servers whose authentication is OFF unless a setting turns it on: leaving the setting out is as
 * open as no-default-credentials' "authentication off" settings, but there is no value to see
 * (session 38's configuration hunt: a Grafana container without its admin password, admin/admin,
 * passed the whole pack). Recognised by the image's name (catalog/images.ts) or, for an image run by
 * its ID, the workload's (`trading.io/workload`), or a command line that runs `redis-server`, on both targets:
 * - Grafana: without GF_SECURITY_ADMIN_PASSWORD (or its __FILE), the admin logs in with admin/admin,
 *   and with GF_USERS_ALLOW_SIGN_UP anyone makes an account that reads every dashboard;
 * - Dragonfly: without `requirepass` (DFLY_requirepass, --requirepass, or a `--requirepass=` line of the
 *   flag file it is started with, `--flagfile`: the platform's way since session 45), every client is in;
 * - Redis (the legacy Redis, and anything run as redis-server): without `requirepass` every client is
 *   in. The upstream image reads no password variable: the platform starts it with a generated
 *   redis.conf (a Docker upload; a key of the workload's Secret mounted on Kubernetes), which is read
 *   here as the server reads it; `--requirepass` on the command line, and REDIS_PASSWORD where the image
 *   reads it (Bitnami's, the offline stand-in run by image ID), count too;
 * - Weaviate: without an authentication scheme (API keys or OIDC), every request is anonymous.
 * The environment includes the ConfigMaps and Secrets a container takes with `envFrom` when the stack
 * declares them. One it does not declare (or a configuration file from the image, a host file, another
 * volume) cannot be read: the missing setting is reported as one that cannot be verified, since the
 * pack refuses what it cannot check (as edge-tls-only an nginx.conf it cannot read). Values not known
 * during preview are not judged on what they lack: they are known at `up`, where the pack runs again.
 * A stack policy: the sources of a workload's environment and files are other resources.
 */
interface Process {
    /** ` container "x"` on Kubernetes, "" on Docker. */
    where: string;
    image?: string;
    /** Names upper-cased; a value not known during preview is UNKNOWN_VALUE. */
    env: Map<string, string>;
    /** Some of the environment is not known during preview. */
    envUnknown: boolean;
    /** envFrom sources the stack does not declare, as messages name them. */
    unseen: string[];
    words: string[];
    file: (path: string) => FileView;
}

/** What a server's setting is, as far as the stack shows it. */
type Verdict = "provided" | "missing" | "unknown" | { unseen: string };

interface ServerRule {
    /** The setting that must be there, as the fix names it. */
    needs: string;
    /**
     * Whether the environment and the command line (and, for Redis, its configuration file) provide it;
     * `byName`: the server was recognised by the workload's name, its image (run by ID) unknown.
     */
    provided: (p: Process, byName: boolean, image: string) => boolean | Verdict;
    /** Problems of settings that are present. */
    extra?: (env: Map<string, string>) => string[];
}

const UNKNOWN_VALUE = "<unknown during preview>";

/** The value of `--flag value` or `--flag=value` on a command line (quotes stripped), if the flag is there. */
function flagValue(words: string[], flag: string): string | undefined {
    for (let i = 0; i < words.length; i++) {
        if (words[i] === flag) return (words[i + 1] ?? "").replace(/^["']+|["']+$/g, "");
        if (words[i].startsWith(`${flag}=`)) return words[i].slice(flag.length + 1).replace(/^["']+|["']+$/g, "");
    }
    return undefined;
}

/** The last `requirepass` of a redis.conf (the one the server keeps), unquoted; "" when there is none. */
export function redisConfRequirepass(conf: string): string {
    let pass = "";
    for (const line of conf.split(/\r?\n/)) {
        const m = /^\s*requirepass\s+(.*?)\s*$/i.exec(line);
        if (m) pass = m[1].replace(/^(["'])(.*)\1$/, "$2");
    }
    return pass;
}

/** The configuration file redis-server is started with: its first argument, when it is not a flag. */
function redisConfPath(words: string[]): string | undefined {
    const i = words.findIndex((w) => w.split("/").pop() === "redis-server");
    const next = i >= 0 ? words[i + 1] : undefined;
    return next !== undefined && !next.startsWith("-") ? next : undefined;
}

/** The last `--requirepass` of an abseil flag file (`--flag=value` lines, `#` comments), unquoted; "" when there is none. */
export function flagfileRequirepass(text: string): string {
    let pass = "";
    for (const line of text.split(/\r?\n/)) {
        const m = /^\s*--?requirepass=(.*?)\s*$/.exec(line);
        if (m) pass = m[1].replace(/^(["'])(.*)\1$/, "$2");
    }
    return pass;
}

/** Dragonfly's password: its variable, its flag, or the flag files it is started with (`--flagfile=<path>`), read as it reads them. */
function dragonflyProvided(p: Process, byName: boolean): Verdict {
    if (p.env.has("DFLY_REQUIREPASS") || p.words.some((w) => w === "--requirepass" || w.startsWith("--requirepass="))) return "provided";
    // The offline stand-in for Dragonfly (Redis 7, run by image ID under the dragonfly workload) reads
    // REDIS_PASSWORD in its entrypoint, or since session 44 REDIS_PASSWORD_FILE (the Docker runtime's
    // secret file, whose content no-default-credentials judges); Dragonfly itself reads neither, so
    // only an unnamed image gets them.
    if (byName && (p.env.has("REDIS_PASSWORD") || p.env.has("REDIS_PASSWORD_FILE"))) return "provided";
    const paths = p.words.flatMap((w, i) => (w === "--flagfile" ? [p.words[i + 1] ?? ""] : w.startsWith("--flagfile=") ? [w.slice("--flagfile=".length)] : []));
    let verdict: Verdict = "missing";
    for (const path of paths.map((x) => x.replace(/^["']+|["']+$/g, "")).filter((x) => x !== "")) {
        const file = p.file(path);
        if ("unknown" in file) verdict = "unknown";
        else if ("unseen" in file) verdict = verdict === "unknown" ? verdict : { unseen: `its flag file ${file.unseen}` };
        else if (flagfileRequirepass(file.text).trim() !== "") return "provided";
    }
    return verdict;
}

function redisProvided(p: Process, byName: boolean, image: string): Verdict {
    if ((flagValue(p.words, "--requirepass") ?? "") !== "") return "provided";
    // REDIS_PASSWORD is read by Bitnami's image and by the offline stand-in (a build on the host, localhost/...,
    // or run by its ID); not by the upstream image.
    if ((byName || /(^|\/)bitnami\/redis$/.test(image) || image.startsWith("localhost/")) && ((p.env.get("REDIS_PASSWORD") ?? "").trim() !== "" || p.env.has("REDIS_PASSWORD_FILE"))) return "provided";
    const path = redisConfPath(p.words);
    if (path === undefined) return "missing";
    const file = p.file(path);
    if ("unknown" in file) return "unknown";
    if ("unseen" in file) return { unseen: `its configuration file ${file.unseen}` };
    return redisConfRequirepass(file.text).trim() !== "" ? "provided" : "missing";
}

const TRUE = new Set(["1", "t", "true", "y", "yes", "on", "enabled"]);
const isTrue = (v: string | undefined) => v !== undefined && TRUE.has(v.trim().toLowerCase());

const SERVERS: ReadonlyMap<string, ServerRule> = new Map(Object.entries({
    grafana: {
        needs: "GF_SECURITY_ADMIN_PASSWORD (from a generated secret)",
        provided: ({ env }) => (env.get("GF_SECURITY_ADMIN_PASSWORD") ?? "").trim() !== "" || env.has("GF_SECURITY_ADMIN_PASSWORD__FILE") || isTrue(env.get("GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION")),
        extra: (env) => (isTrue(env.get("GF_USERS_ALLOW_SIGN_UP")) ? [`sets GF_USERS_ALLOW_SIGN_UP=${env.get("GF_USERS_ALLOW_SIGN_UP")}: anyone who reaches Grafana makes an account that reads every dashboard`] : []),
    },
    dragonfly: {
        needs: "requirepass (in the flag file it is started with, DFLY_requirepass or --requirepass, from a generated secret)",
        provided: dragonflyProvided,
    },
    redis: {
        needs: "requirepass (in the redis.conf it is started with, or --requirepass, from a generated secret)",
        provided: redisProvided,
    },
    weaviate: {
        needs: "an authentication scheme (AUTHENTICATION_APIKEY_ENABLED=true with AUTHENTICATION_APIKEY_ALLOWED_KEYS from a generated secret)",
        provided: ({ env }) => isTrue(env.get("AUTHENTICATION_APIKEY_ENABLED")) || isTrue(env.get("AUTHENTICATION_OIDC_ENABLED")),
    },
} satisfies Record<string, ServerRule>));

function words(parts: unknown[]): string[] {
    return parts.flatMap((p) => str(p)?.split(/\s+/) ?? []);
}

/**
 * A container's environment as the process sees it: its envFrom sources in order (the stack's
 * ConfigMaps and Secrets, a later one overriding an earlier), then its own env, which wins.
 */
function environmentOf(w: Workload, c: K8sContainer | undefined, env: ReturnType<typeof workloadEnv>[number], resources: readonly StackResource[]) {
    const vars = new Map<string, string>();
    const unseen: string[] = [];
    let envUnknown = !env.namesKnown;
    for (const from of env.envFrom) {
        if (from.name === undefined) {
            envUnknown = true;
            continue;
        }
        const source = findEnvironmentSource(resources, from.kind, from.name, namespaceOf(w.props));
        if (!source) {
            unseen.push(`${from.kind} "${from.name}"`);
            continue;
        }
        if (isUnknown(source.props.data) || isUnknown(source.props.stringData)) envUnknown = true;
        for (const e of environmentSourceEntries(source.type, source.props)) vars.set(`${from.prefix}${e.name}`.toUpperCase(), e.value ?? UNKNOWN_VALUE);
    }
    for (const e of env.entries) {
        vars.set(e.name.toUpperCase(), e.value ?? (e.source === "reference" ? "<from a reference>" : e.source === "unknown" ? UNKNOWN_VALUE : ""));
    }
    return { env: vars, envUnknown, unseen, file: (path: string) => workloadFile(w, c, path, resources) };
}

function processesOf(w: Workload, resources: readonly StackResource[]): Process[] {
    return workloadEnv(w.type, w.props).filter((env) => !env.container?.init).map((env) => {
        const c = env.container;
        const seen = environmentOf(w, c, env, resources);
        if (!c) return { where: "", image: str(w.props.image), ...seen, words: words([...arr(w.props.command), ...arr(w.props.entrypoints)]) };
        return { where: ` container "${c.name}"`, image: str(c.container.image), ...seen, words: words([...arr(c.container.command), ...arr(c.container.args)]) };
    });
}

export interface AuthenticationProblem {
    problem: string;
    /** The setting cannot be verified (its source is not in the stack), rather than missing. */
    unverified?: boolean;
}

/** What a workload's servers lack, given the stack's resources (the sources of its envFrom and mounted files). */
export function missingAuthenticationProblems(w: Workload, resources: readonly StackResource[] = []): AuthenticationProblem[] {
    const out: AuthenticationProblem[] = [];
    for (const p of processesOf(w, resources)) {
        const who = p.where.trim() ? `${p.where.trim()} ` : "";
        // The image's name, else the workload's (a Docker container runs its image by ID, sha256:...),
        // else a command line that starts redis-server.
        const ref = p.image !== undefined && !isUnknown(p.image) ? parseImageRef(p.image) : undefined;
        const byImage = ref?.basename ?? "";
        const server = SERVERS.has(byImage) ? byImage : SERVERS.has(w.id.workload) ? w.id.workload : redisConfPath(p.words) !== undefined || p.words.some((x) => x.split("/").pop() === "redis-server") ? "redis" : "";
        const rule = SERVERS.get(server);
        if (rule === undefined) continue;
        const given = rule.provided(p, server !== byImage, ref?.repository ?? "");
        let verdict: Verdict = given === true ? "provided" : given === false ? "missing" : given;
        // What the environment lacks is judged only on an environment the stack shows in full.
        if (verdict === "missing" && p.unseen.length > 0) verdict = { unseen: `its environment partly from envFrom ${p.unseen.join(", ")}, which the stack does not declare` };
        if (verdict === "missing" && p.envUnknown) verdict = "unknown";
        if (verdict === "missing") out.push({ problem: `${who}runs ${server} without ${rule.needs}, so its authentication is off` });
        if (typeof verdict === "object") {
            out.push({ problem: `${who}runs ${server} with ${verdict.unseen}, so whether it has ${rule.needs} cannot be verified`, unverified: true });
        }
        for (const e of rule.extra?.(p.env) ?? []) out.push({ problem: `${who}${e}` });
    }
    return out;
}

/**
 * Session 48: a setting that turns a server's authentication off (`POSTGRES_HOST_AUTH_METHOD=trust`,
 * `GF_AUTH_ANONYMOUS_ENABLED=true`, lib/credentials.ts `turnsAuthOff`) given through the stack's
 * ConfigMaps and Secrets, a whole one by `envFrom` or a key by `valueFrom`: no-default-credentials
 * reads literal values only. As `<container> turns ... off with NAME=value from <source>`.
 */
export function authOffFromSources(w: Workload, resources: readonly StackResource[]): string[] {
    const out: string[] = [];
    for (const env of workloadEnv(w.type, w.props)) {
        if (!env.container) continue;
        const off = (name: string, value: string | undefined, from: string) => {
            if (value !== undefined && turnsAuthOff(name, value)) out.push(`container "${env.container!.name}" turns authentication off with ${name}=${value.trim()} from ${from}`);
        };
        for (const from of env.envFrom) {
            const source = from.name === undefined ? undefined : findEnvironmentSource(resources, from.kind, from.name, namespaceOf(w.props));
            for (const e of source ? environmentSourceEntries(source.type, source.props) : []) off(`${from.prefix}${e.name}`, e.value, `envFrom ${from.kind} "${from.name}"`);
        }
        for (const e of env.entries) {
            const ref = referencedValue(resources, e.valueFrom, namespaceOf(w.props));
            if (ref) off(e.name, ref.value, ref.from);
        }
    }
    return out;
}

const FIX = "; set it from a generated password (random.RandomPassword, through a Secret on Kubernetes), as the platform's own components do.";
const VERIFY = "; declare that ConfigMap or Secret in the stack, or give the setting in the container's own env (a secretKeyRef) or " +
    "command line, so the pack can see it: a server whose authentication it cannot see may have none.";

export const serversRequireAuthentication: StackValidationPolicy = {
    name: "servers-require-authentication",
    description:
        "Servers whose authentication is off unless configured get it configured: Grafana an admin password (else admin/admin) " +
        "and no open sign-up, Dragonfly and Redis requirepass, Weaviate an authentication scheme; one whose setting the stack cannot show is reported too, " +
        "and so is a setting turning authentication off given through the stack's ConfigMaps and Secrets (envFrom, valueFrom).",
    severity: "critical",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        for (const { workload: w, urn } of stackWorkloads(resources)) {
            for (const p of missingAuthenticationProblems(w, resources)) reportViolation(`${w.label} ${p.problem}${p.unverified ? VERIFY : FIX}`, urn);
            for (const p of authOffFromSources(w, resources)) {
                reportViolation(`${w.label} ${p}: every client gets in without a credential; remove the setting from that ConfigMap or Secret and give ` +
                    "the server a generated password (random.RandomPassword, through a Secret).", urn);
            }
        }
    },
};
