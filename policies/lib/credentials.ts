/** Known default credentials and credential-shaped names/values (pure). */

/**
 * Literals published in the deployment guide (and its `.env.plan2`). They are public, so any
 * occurrence in a deployed resource is a leaked credential, whatever the key around it.
 */
export const GUIDE_DEFAULT_SECRETS = [
    "ai_trading_secure_pass_2024",
    "dragonfly_secure_pass_2024",
    "clickhouse_secure_pass_2024",
    "ai_trading_graph_pass_2024",
    "ai_trading_jwt_super_secret_key_change_in_production_2024",
    "your_binance_api_key_here",
    "your_binance_secret_key_here",
    "your_telegram_bot_token_here",
    "admin123",
];

/**
 * Weak values that are only suspicious as the whole value of a credential (checked by exact,
 * case-insensitive match so that e.g. an image called "postgres" is not flagged).
 */
export const WEAK_SECRET_VALUES = [
    "admin", "admin123", "password", "passw0rd", "password123", "changeme", "change_me", "secret",
    "root", "toor", "postgres", "default", "test", "guest", "123456", "12345678", "qwerty",
    "letmein", "pass", "clickhouse", "arangodb", "grafana",
];

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

/** Passwords of every `scheme://user:password@host` URL inside a text (e.g. an env entry "K=url"). */
export function urlPasswordsIn(text: string): string[] {
    const out: string[] = [];
    for (const m of text.matchAll(/[a-z][a-z0-9+.-]*:\/\/[^\s"'<>,;]+/gi)) {
        const pw = urlPassword(m[0]);
        if (pw !== undefined) out.push(pw);
    }
    return out;
}

/** Guide literals contained in a string (case-insensitive substring match). */
export function guideSecretsIn(value: string, extra: string[] = []): string[] {
    const lower = value.toLowerCase();
    return [...GUIDE_DEFAULT_SECRETS, ...extra].filter((s) => s.length > 0 && lower.includes(s.toLowerCase()));
}

/** A weak credential value: a well-known one, or none at all (an empty password lets anyone in). */
export function isWeakValue(value: string, extra: string[] = []): boolean {
    const v = value.trim().toLowerCase();
    return v === "" || [...WEAK_SECRET_VALUES, ...extra].some((w) => w.toLowerCase() === v);
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
