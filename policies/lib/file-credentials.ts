/**
 * Credentials written inside a configuration file (pure): the value of a ConfigMap key, a Secret
 * entry or a Docker upload is often a whole file (`app.properties`, `redis.conf`, `.env`, YAML, JSON,
 * INI, a connection string), and a password inside it is as plain as a credential-named key. The file
 * is read line by line, whatever its format: a credential-named setting (`isCredentialName`, plus the
 * few servers' directives whose name says nothing, Redis's `requirepass`/`masterauth`) given a literal
 * value is a finding; a reference (`${VAR}`, `$VAR`, `$(VAR)`, `{{ .Values.x }}`, Grafana's
 * `$__env{X}`/`$__file{/p}`), an empty value, a boolean or null, and a file path pass.
 */
import { isCredentialName } from "./credentials";

export interface FileCredential {
    /** 1-based line of the file. */
    line: number;
    /** The setting's name as written (never the value: messages must not show it). */
    name: string;
    /** The literal value (for the weak-value check only; never printed). */
    value: string;
}

/** Directives of servers the platform runs whose value is a password though the name does not say so. */
const PASSWORD_DIRECTIVES = new Set(["requirepass", "masterauth"]);

/**
 * Words before a last word KEY that make it no secret: a file's `primary_key`, `partition.key` or
 * `public_key` is a column, a record's key or a key everyone may read.
 */
const NOT_SECRET_KEY_QUALIFIERS = new Set([
    "PUBLIC", "PRIMARY", "FOREIGN", "PARTITION", "SORT", "CACHE", "ROUTING", "SHARD", "UNIQUE", "INDEX", "LOOKUP", "GROUP", "LABEL",
    "TAG", "MESSAGE", "RECORD", "IDEMPOTENCY", "DEDUP", "DEDUPE", "HASH", "MAP", "ROW", "COLUMN", "JOIN",
]);

/**
 * A setting inside a file that holds a credential: `isCredentialName`, but a bare `key`, `keys` or `auth`
 * (in YAML and JSON a map's or a selector's key, `- key: app.kubernetes.io/name`, or a section) and a key
 * qualified as no secret (`primary_key`, `public_key`) are not; Redis's `requirepass`/`masterauth` are.
 */
export function isCredentialSetting(name: string): boolean {
    if (PASSWORD_DIRECTIVES.has(name.toLowerCase())) return true;
    if (!isCredentialName(name)) return false;
    const words = name.toUpperCase().split(/[^A-Z0-9]+/).filter(Boolean);
    const last = words[words.length - 1];
    if (words.length === 1 && ["KEY", "KEYS", "AUTH"].includes(last)) return false;
    return !((last === "KEY" || last === "KEYS") && NOT_SECRET_KEY_QUALIFIERS.has(words[words.length - 2]));
}

/** Values that are no secret: what a template or the server fills in, nothing, or a switch. */
const NOT_LITERAL = new Set(["", "~", "null", "true", "false", "yes", "no", "on", "off", "none", "|", ">", "|-", ">-", "[]", "{}", "{", "["]);

/**
 * A value that is not a literal credential: a reference filled in elsewhere (shell, Kubernetes,
 * Helm/Go templates, Grafana's provisioning, Spring), a path to the file holding it, nothing, or a switch.
 */
export function isReferenceOrEmpty(raw: string): boolean {
    const v = raw.trim();
    if (NOT_LITERAL.has(v.toLowerCase())) return true;
    if (/^\$\{[^}]*\}$/.test(v) || /^\$\([^)]*\)$/.test(v) || /^\$[A-Za-z_][A-Za-z0-9_]*$/.test(v)) return true;
    if (/^\{\{.*\}\}$/.test(v) || /^\$__(env|file|vault)\{[^}]*\}$/.test(v) || /^%\([^)]*\)s$/.test(v)) return true;
    // A path to the file that holds the credential (password_file style settings, mounted Secrets).
    if (/^(\/|\.\/|~\/|file:)/.test(v)) return true;
    return false;
}

/** A value as written: quotes removed; an unquoted value loses a trailing ` # comment` and a JSON comma. */
function unquote(raw: string): string {
    const v = raw.trim().replace(/,$/, "").trim();
    const quoted = /^"((?:[^"\\]|\\.)*)"|^'([^']*)'/.exec(v);
    if (quoted) return quoted[1] ?? quoted[2] ?? "";
    const bare = v.replace(/\s+[#;].*$/, "").trim();
    // The end of a flow mapping or list (`{password: x}`), unless the value holds its own braces (`${X}`).
    return /[{[]/.test(bare) ? bare : bare.replace(/\s*[}\]]+$/, "");
}

/** A key as written: quotes, a YAML list dash, a flow mapping's brace, `export ` removed. */
function bareKey(raw: string): string {
    return raw.trim().replace(/^(?:-\s+|\{\s*)/, "").replace(/^export\s+/, "").replace(/^["']|["']$/g, "").trim();
}

const COMMENT = /^(#|;|\/\/|<!--|\*|\/\*)/;
/** `name = value`, `name: value` at the start of a line (properties, INI, .env, YAML, JSON, TOML). */
const SETTING = /^((?:-\s+|\{\s*)?(?:export\s+)?["']?[A-Za-z_][\w.\- ]*?["']?)\s*[:=]\s*(.*)$/;
/**
 * `name=value` pairs anywhere in a line: connection strings, query strings, XML attributes, JVM flags
 * (`JAVA_OPTS=-Dspring.datasource.password=x`: a pair inside another's value, so only the name and `=`
 * are matched, and the value read after them).
 */
const PAIR_NAME = /(?<![\w.])([A-Za-z_][\w.-]*)\s*=\s*/g;
const PAIR_VALUE = /^("[^"]*"|'[^']*'|[^\s;&,"'<>]*)/;
/** `<password>value</password>`. */
const XML_ELEMENT = /<([A-Za-z_][\w.:-]*)>([^<]*)<\/\1>/g;

/**
 * Every credential-named setting with a literal value in a file's text, one per line and name. A
 * whole JSON document (a minified one on a single line too) is read as JSON, key by key.
 */
export function fileCredentials(text: string): FileCredential[] {
    const out: FileCredential[] = [];
    const seen = new Set<string>();
    const add = (line: number, name: string, raw: string) => {
        const value = unquote(raw);
        if (!isCredentialSetting(name) || isReferenceOrEmpty(value)) return;
        const key = `${line}|${name}`;
        if (seen.has(key)) return;
        seen.add(key);
        out.push({ line, name, value });
    };
    const json = jsonDocument(text);
    if (json !== undefined) {
        walkJson(json, (name, value) => add(0, name, value));
        return out.map((f) => ({ ...f, line: lineOf(text, f.name) }));
    }
    text.split(/\r?\n/).forEach((rawLine, i) => {
        const line = rawLine.replace(/^\uFEFF/, "").trim();
        if (line === "" || COMMENT.test(line) || /^\[[^\]]*\]$/.test(line)) return;
        const n = i + 1;
        const setting = SETTING.exec(line);
        if (setting) add(n, bareKey(setting[1]), setting[2]);
        for (const m of line.matchAll(PAIR_NAME)) add(n, m[1], PAIR_VALUE.exec(line.slice(m.index + m[0].length))?.[1] ?? "");
        for (const m of line.matchAll(XML_ELEMENT)) add(n, m[1], m[2]);
        // `requirepass x`, `password x` (a directive and one value, as redis.conf and Java properties write it).
        const words = line.split(/\s+/);
        if (!setting && words.length === 2) add(n, words[0], words[1]);
        // Redis ACL rules: `user <name> on >password` adds a password in the clear.
        if (/^user\s/i.test(line)) {
            for (const w of words) if (w.startsWith(">") && w.length > 1) add(n, "user ... >password", w.slice(1));
        }
    });
    return out;
}

/** The text as a JSON object or array, if it is one. */
function jsonDocument(text: string): unknown {
    const t = text.trim();
    if (!/^[[{]/.test(t)) return undefined;
    try {
        return JSON.parse(t);
    } catch {
        return undefined;
    }
}

/** Each key of a JSON document with a string or number value. */
function walkJson(value: unknown, visit: (name: string, value: string) => void): void {
    if (Array.isArray(value)) {
        for (const v of value) walkJson(v, visit);
        return;
    }
    if (value === null || typeof value !== "object") return;
    for (const [k, v] of Object.entries(value)) {
        if (typeof v === "string") visit(k, JSON.stringify(v));
        else if (typeof v === "number") visit(k, String(v));
        else walkJson(v, visit);
    }
}

/** The 1-based line on which a JSON key first appears. */
function lineOf(text: string, name: string): number {
    const i = text.indexOf(JSON.stringify(name));
    return i < 0 ? 1 : text.slice(0, i).split("\n").length;
}
