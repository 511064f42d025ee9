import { ResourceValidationPolicy } from "@pulumi/policy";
import { parseImageRef } from "../../catalog/images";
import { workloadEnv } from "../lib/environment";
import { Workload, workloadRule } from "../lib/rule";
import { arr, isUnknown, str } from "../lib/values";

/**
 * Servers whose authentication is OFF unless a setting turns it on: leaving the setting out is as
 * open as no-default-credentials' "authentication off" settings, but there is no value to see
 * (session 38's configuration hunt: a Grafana container without its admin password, admin/admin,
 * passed the whole pack). Recognised by the image's name (catalog/images.ts) or, for an image run by
 * its ID, the workload's (`trading.io/workload`), on both targets:
 * - Grafana: without GF_SECURITY_ADMIN_PASSWORD (or its __FILE), the admin logs in with admin/admin,
 *   and with GF_USERS_ALLOW_SIGN_UP anyone makes an account that reads every dashboard;
 * - Dragonfly: without `requirepass` (DFLY_requirepass, --requirepass), every client is in;
 * - Weaviate: without an authentication scheme (API keys or OIDC), every request is anonymous.
 * A workload whose environment is partly unknown (a value computed during preview, `envFrom` on
 * Kubernetes) is not judged on what it lacks.
 */
interface ServerRule {
    /** The setting that must be there, as the fix names it. */
    needs: string;
    /**
     * Whether the environment (names upper-cased; values as given) and the command line provide it;
     * `byName`: the server was recognised by the workload's name, its image (run by ID) unknown.
     */
    provided: (env: Map<string, string>, words: string[], byName: boolean) => boolean;
    /** Problems of settings that are present. */
    extra?: (env: Map<string, string>) => string[];
}

const TRUE = new Set(["1", "t", "true", "y", "yes", "on", "enabled"]);
const isTrue = (v: string | undefined) => v !== undefined && TRUE.has(v.trim().toLowerCase());

const SERVERS: ReadonlyMap<string, ServerRule> = new Map(Object.entries({
    grafana: {
        needs: "GF_SECURITY_ADMIN_PASSWORD (from a generated secret)",
        provided: (env) => (env.get("GF_SECURITY_ADMIN_PASSWORD") ?? "").trim() !== "" || env.has("GF_SECURITY_ADMIN_PASSWORD__FILE") || isTrue(env.get("GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION")),
        extra: (env) => (isTrue(env.get("GF_USERS_ALLOW_SIGN_UP")) ? [`sets GF_USERS_ALLOW_SIGN_UP=${env.get("GF_USERS_ALLOW_SIGN_UP")}: anyone who reaches Grafana makes an account that reads every dashboard`] : []),
    },
    dragonfly: {
        needs: "requirepass (DFLY_requirepass from a generated secret)",
        // The offline stand-in for Dragonfly (Redis 7, run by image ID under the dragonfly workload) reads
        // REDIS_PASSWORD in its entrypoint; Dragonfly itself does not, so only an unnamed image gets it.
        provided: (env, words, byName) =>
            env.has("DFLY_REQUIREPASS") || words.some((w) => w === "--requirepass" || w.startsWith("--requirepass=")) || (byName && env.has("REDIS_PASSWORD")),
    },
    weaviate: {
        needs: "an authentication scheme (AUTHENTICATION_APIKEY_ENABLED=true with AUTHENTICATION_APIKEY_ALLOWED_KEYS from a generated secret)",
        provided: (env) => isTrue(env.get("AUTHENTICATION_APIKEY_ENABLED")) || isTrue(env.get("AUTHENTICATION_OIDC_ENABLED")),
    },
} satisfies Record<string, ServerRule>));

interface Process {
    where: string;
    image?: string;
    /** undefined: some of the environment cannot be read (unknown during preview, envFrom). */
    env?: Map<string, string>;
    words: string[];
}

function words(parts: unknown[]): string[] {
    return parts.flatMap((p) => str(p)?.split(/\s+/) ?? []);
}

function processesOf(w: Workload): Process[] {
    return workloadEnv(w.type, w.props).filter((env) => !env.container?.init).map((env) => {
        const readable = env.namesKnown && env.envFrom.length === 0;
        const vars = readable
            ? new Map(env.entries.map((e): [string, string] => [e.name.toUpperCase(), e.value ?? (e.source === "reference" ? "<from a reference>" : "")]))
            : undefined;
        if (!env.container) return { where: "", image: str(w.props.image), env: vars, words: words([...arr(w.props.command), ...arr(w.props.entrypoints)]) };
        const c = env.container;
        return { where: ` container "${c.name}"`, image: str(c.container.image), env: vars, words: words([...arr(c.container.command), ...arr(c.container.args)]) };
    });
}

export function missingAuthenticationProblems(w: Workload): string[] {
    const out: string[] = [];
    for (const p of processesOf(w)) {
        if (p.env === undefined) continue;
        // The image's name, else the workload's (a Docker container runs its image by ID, sha256:...).
        const byImage = p.image !== undefined && !isUnknown(p.image) ? parseImageRef(p.image).basename : "";
        const server = SERVERS.has(byImage) ? byImage : w.id.workload;
        const rule = SERVERS.get(server);
        if (rule === undefined) continue;
        if (!rule.provided(p.env, p.words, server !== byImage)) out.push(`${p.where.trim() ? `${p.where.trim()} ` : ""}runs ${server} without ${rule.needs}, so its authentication is off`);
        for (const e of rule.extra?.(p.env) ?? []) out.push(`${p.where.trim() ? `${p.where.trim()} ` : ""}${e}`);
    }
    return out;
}

export const serversRequireAuthentication: ResourceValidationPolicy = {
    name: "servers-require-authentication",
    description:
        "Servers whose authentication is off unless configured get it configured: Grafana an admin password (else admin/admin) " +
        "and no open sign-up, Dragonfly requirepass, Weaviate an authentication scheme.",
    severity: "critical",
    validateResource: workloadRule({}, (w) => missingAuthenticationProblems(w), (w, p) =>
        `${w.label} ${p}; set it from a generated password (random.RandomPassword, through a Secret on Kubernetes), as the platform's own components do.`),
};
