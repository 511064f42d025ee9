/** Known default credentials and credential-shaped names/values (pure). */

/**
 * The guide's published literals and the well-known weak values are catalog/credentials.ts's: the
 * stack config refuses the same values before the program runs (on every stack but dev).
 */
export { GUIDE_DEFAULT_SECRETS, guideSecretsIn, isWeakValue, WEAK_SECRET_VALUES } from "../../catalog/credentials";

/** Last words of variable/key names that hold credentials (AUTH_TOKEN, JWT_SECRET, BINANCE_SECRET_KEY, ...). */
const CREDENTIAL_WORDS = new Set([
    "PASSWORD", "PASSWD", "PWD", "PASS", "PW", "PASSPHRASE", "SECRET", "SECRETS", "TOKEN", "KEY", "KEYS", "APIKEY", "CREDENTIAL", "CREDENTIALS",
    // REDIS_AUTH, MASTER_AUTH: the password itself in the images that read them.
    "AUTH",
]);

/**
 * Names of variables/keys that hold credentials: judged by their last word, so that
 * AUTHENTICATION_APIKEY_ENABLED or PASSWORD_MIN_LENGTH are not credentials while
 * AUTHENTICATION_APIKEY_ALLOWED_KEYS is. `*_FILE` (a path to a secret file) is not one.
 */
export function isCredentialName(name: string): boolean {
    const words = name.toUpperCase().split(/[^A-Z0-9]+/).filter(Boolean);
    const last = words[words.length - 1];
    if (last === undefined) return false;
    if (CREDENTIAL_WORDS.has(last)) return true;
    // camelCase / lower-case keys of Secrets and ConfigMaps: "adminPassword", "api-key", "jwt.secret"
    return /(password|passwd|secret|token|apikey|api_key|privatekey)$/i.test(name);
}

/** `scheme://user:password@host` — returns the password part, if any. */
export function urlPassword(value: string): string | undefined {
    const m = /^[a-z][a-z0-9+.-]*:\/\/([^/@\s:]*):([^/@\s]+)@/i.exec(value.trim());
    if (!m) return undefined;
    try {
        return decodeURIComponent(m[2]);
    } catch {
        return m[2];
    }
}

/** Last words of names that hold an account's name (POSTGRES_USER, DB_USERNAME, smtp.login). */
const USER_WORDS = new Set(["USER", "USERNAME", "LOGIN", "USR"]);

/**
 * Session 48: credentials among `entries` ([name, value] of one environment or Secret) whose value is
 * the account name given beside them (`POSTGRES_USER=ai_trading_user`, `POSTGRES_PASSWORD=ai_trading_user`):
 * the first guess of anyone who knows the user. Each as [credential name, user name]; compared
 * trimmed and case-insensitively, empty values left to the empty-credential check.
 */
export function credentialsEqualToUser(entries: ReadonlyArray<[string, string]>): Array<[string, string]> {
    const norm = (v: string) => v.trim().toLowerCase();
    const users = entries.filter(([n, v]) => USER_WORDS.has(n.toUpperCase().split(/[^A-Z0-9]+/).filter(Boolean).pop() ?? "") && norm(v) !== "");
    return entries.flatMap(([n, v]): Array<[string, string]> => {
        const user = isCredentialName(n) && norm(v) !== "" ? users.find(([, u]) => norm(u) === norm(v)) : undefined;
        return user ? [[n, user[0]]] : [];
    });
}

/** `scheme://user:password@` URLs inside a text whose password is their user name (`postgresql://admin:admin@db`). */
export function urlsWithUserAsPassword(text: string): number {
    let n = 0;
    for (const m of text.matchAll(/[a-z][a-z0-9+.-]*:\/\/([^/@\s:"'<>,;]+):([^/@\s"'<>,;]+)@/gi)) {
        const decode = (v: string) => { try { return decodeURIComponent(v); } catch { return v; } };
        if (decode(m[1]).toLowerCase() === decode(m[2]).toLowerCase()) n++;
    }
    return n;
}

/** Passwords of every `scheme://user:password@host` URL inside a text (e.g. an env entry "K=url"). */
export function urlPasswordsIn(text: string): string[] {
    const out: string[] = [];
    for (const m of text.matchAll(/[a-z][a-z0-9+.-]*:\/\/[^\s"'<>,;]+/gi)) {
        const pw = urlPassword(m[0]);
        if (pw !== undefined) out.push(pw);
    }
    return out;
}

/**
 * True as each server reads the setting, lower-cased (a setting spelt any way its server reads as
 * true turns authentication off as surely as "true"): Grafana's go-ini `parseBool` (1, t, true, y,
 * yes, on), Weaviate's `entcfg.Enabled` (on, enabled, 1, true), the Bitnami images' `is_boolean_yes`
 * (1, yes, true).
 */
const GRAFANA_TRUE = new Set(["1", "t", "true", "y", "yes", "on"]);
const WEAVIATE_TRUE = new Set(["on", "enabled", "1", "true"]);
const BITNAMI_TRUE = new Set(["1", "yes", "true"]);

/**
 * Environment settings of the datastores and tools the guide deploys (and their common images) that
 * turn authentication off: what each is when it does.
 */
const AUTH_OFF: ReadonlyMap<string, (v: string) => boolean> = new Map([
    ["POSTGRES_HOST_AUTH_METHOD", (v) => v === "trust"],
    ["GF_AUTH_ANONYMOUS_ENABLED", (v) => GRAFANA_TRUE.has(v)],
    // Grafana's auth proxy logs in whoever its header (X-WEBAUTH-USER) names: anyone who reaches
    // Grafana past the proxy (every pod Grafana's network policy admits, the Docker admin port) is admin.
    ["GF_AUTH_PROXY_ENABLED", (v) => GRAFANA_TRUE.has(v)],
    ["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", (v) => WEAVIATE_TRUE.has(v)],
    // The ArangoDB image's entrypoint tests only that the variable is non-empty: "0" and "false" turn
    // authentication off too.
    ["ARANGO_NO_AUTH", (v) => v !== ""],
    ["ALLOW_EMPTY_PASSWORD", (v) => BITNAMI_TRUE.has(v)],
]);

/** Does the environment variable `name=value` turn a server's authentication off? */
export function turnsAuthOff(name: string, value: string): boolean {
    return AUTH_OFF.get(name.toUpperCase())?.(value.trim().toLowerCase()) ?? false;
}

/** Splits a "K=V" entry (a Docker `envs` entry, a mount option) into [K, V]; undefined without a name. */
export function splitEnv(entry: string): [string, string] | undefined {
    const i = entry.indexOf("=");
    if (i <= 0) return undefined;
    return [entry.slice(0, i), entry.slice(i + 1)];
}

/** Redacts a secret for messages: keeps its length and first two characters. */
export function redact(secret: string): string {
    if (secret.length <= 4) return "****";
    return `${secret.slice(0, 2)}${"*".repeat(Math.min(secret.length - 2, 8))}`;
}
