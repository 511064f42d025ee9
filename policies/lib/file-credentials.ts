/**
 * Credentials written inside a configuration file (pure): the value of a ConfigMap key, a Secret
 * entry or a Docker upload is often a whole file (`app.properties`, `redis.conf`, `.env`, YAML, JSON,
 * INI, a connection string), and a password inside it is as plain as a credential-named key. The file
 * is read line by line, whatever its format: a credential-named setting (`isCredentialName`, plus the
 * few servers' directives whose name says nothing, Redis's `requirepass`/`masterauth`) given a literal
 * value is a finding; a reference (`${VAR}`, `$VAR`, `$(VAR)`, `{{ .Values.x }}`, Grafana's
 * `$__env{X}`/`$__file{/p}`), an empty value, a boolean or null, and a file path pass.
 *
 * Session 43: formats whose secret is not a `name=value` line: a YAML document is read as YAML too
 * (the `yaml` library: a block scalar `password: |`, a value on the next line, a multi-line quoted
 * string), a JSON value on the line after its key, a `.pgpass` line (`host:port:database:user:password`),
 * a `.netrc` line (`machine x login y password z`), a URL whose user is a token
 * (`.git-credentials`' `https://<token>@github.com`), a Docker `config.json`'s `auths.<registry>.auth`,
 * and a kubeconfig's `client-key-data` (its `token` is a credential name already).
 */
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Node as YamlNode } from "yaml";
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

/** Redis's `requirepass`/`masterauth` (as a redis.conf directive or a `--requirepass` flag): a password whatever the name says. */
export function isPasswordDirective(name: string): boolean {
    return PASSWORD_DIRECTIVES.has(name.toLowerCase());
}

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
    if (isPasswordDirective(name)) return true;
    const words = name.toUpperCase().split(/[^A-Z0-9]+/).filter(Boolean);
    // A key's material inline (a kubeconfig's client-key-data, base64 of the PEM private key).
    if (words.length >= 2 && words[words.length - 2] === "KEY" && words[words.length - 1] === "DATA") {
        return !NOT_SECRET_KEY_QUALIFIERS.has(words[words.length - 3]);
    }
    if (!isCredentialName(name)) return false;
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

/** A `.pgpass` line: `host:port:database:user:password`, `\:` and `\\` escaped, `*` a wildcard; the password, if it is one. */
function pgpassPassword(line: string): string | undefined {
    if (/\s/.test(line)) return undefined;
    const fields = line.split(/(?<!\\):/);
    if (fields.length !== 5 || !/^(\d{1,5}|\*)$/.test(fields[1]) || fields[4] === "") return undefined;
    // Five hex groups are an address (a MAC prefix, an IPv6 fragment), not a host, port, database, user and password.
    if (fields.every((f) => /^[0-9a-f]{1,4}$/i.test(f))) return undefined;
    return fields[4].replace(/\\(.)/g, "$1");
}

/** `.netrc` tokens that take the secret as their next word, on a line that starts a `machine` or `default` entry. */
const NETRC_SECRETS = new Set(["password", "passwd", "account"]);

/** Tokens GitHub, GitLab, Slack and npm issue, recognisable by their prefix. */
const TOKEN_PREFIX = /^(gh[pousr]_|github_pat_|glpat-|glptt-|xox[abpr]-|npm_)[A-Za-z0-9_-]{8,}$/;

/**
 * The user of a URL without a password when it is a token (`https://<token>@github.com`, as git's
 * credential store and many CI files write it): a known token prefix, or 32 or more random-looking
 * characters (a name like `git`, `deploy` or `build-service-account-1` is no secret).
 */
function tokenUser(url: string): string | undefined {
    const m = /^[a-z][a-z0-9+.-]*:\/\/([^/@\s:]+)@/i.exec(url);
    if (!m) return undefined;
    let user = m[1];
    try {
        user = decodeURIComponent(user);
    } catch { /* as written */ }
    if (TOKEN_PREFIX.test(user)) return user;
    if (!/^[A-Za-z0-9_-]{32,}$/.test(user)) return undefined;
    // Random: hex, or upper and lower case letters and digits mixed (a long service account name has no capitals).
    return /^[0-9a-f]+$/i.test(user) || (/[a-z]/.test(user) && /[A-Z]/.test(user) && /[0-9]/.test(user)) ? user : undefined;
}

/** `always`: a credential by its place (a .pgpass field, a registry's auth), whatever its name; `parsed`: `raw` is the value itself, not as written. */
type Add = (line: number, name: string, raw: string, always?: boolean, parsed?: boolean) => void;

/**
 * Every credential-named setting with a literal value in a file's text, one per line and name. A
 * whole JSON document (a minified one on a single line too) is read as JSON, key by key; any other
 * text line by line, and, when it is a YAML mapping or list, as YAML too.
 */
export function fileCredentials(text: string): FileCredential[] {
    const out: FileCredential[] = [];
    const seen = new Set<string>();
    const add: Add = (line, name, raw, always = false, parsed = false) => {
        const value = parsed ? raw.trim() : unquote(raw);
        if (!(always || isCredentialSetting(name)) || isReferenceOrEmpty(value)) return;
        const key = `${line}|${name}`;
        if (seen.has(key)) return;
        seen.add(key);
        out.push({ line, name, value });
    };
    const json = jsonDocument(text);
    if (json !== undefined) {
        walkJson(json, [], (name, value, always) => add(0, name, value, always, true));
        return out.map((f) => ({ ...f, line: lineOf(text, f.name) }));
    }
    const lines = text.split(/\r?\n/);
    lines.forEach((rawLine, i) => readLine(rawLine, i + 1, lines[i + 1], add));
    // Text that opens as JSON but is not (comments, trailing commas) is left to the line reader: YAML would read `// x "key"` as one key.
    if (!/^\s*[[{]/.test(text)) yamlSettings(text, add);
    return out.sort((a, b) => a.line - b.line);
}

/** The settings of one line (`next`: the line after it, for a JSON value written under its key). */
function readLine(rawLine: string, n: number, next: string | undefined, add: Add): void {
    const line = rawLine.replace(/^\uFEFF/, "").trim();
    // Before the comment test: a .pgpass line may start with the wildcard host `*`.
    const pgpass = pgpassPassword(line);
    if (pgpass !== undefined) add(n, "the password of a .pgpass line (host:port:database:user:password)", pgpass, true, true);
    if (line === "" || COMMENT.test(line) || /^\[[^\]]*\]$/.test(line)) return;
    const setting = SETTING.exec(line);
    if (setting) {
        add(n, bareKey(setting[1]), setting[2]);
        // `"password":` with its value on the next line (JSON with comments or a trailing comma, which JSON.parse refuses).
        const following = next?.trim();
        if (setting[2].trim() === "" && following !== undefined && /^("(?:[^"\\]|\\.)*"|'[^']*'),?$/.test(following)) add(n, bareKey(setting[1]), following);
    }
    for (const m of line.matchAll(PAIR_NAME)) add(n, m[1], PAIR_VALUE.exec(line.slice(m.index + m[0].length))?.[1] ?? "");
    for (const m of line.matchAll(XML_ELEMENT)) add(n, m[1], m[2]);
    // `requirepass x`, `password x` (a directive and one value, as redis.conf and Java properties write it).
    const words = line.split(/\s+/);
    if (!setting && words.length === 2) add(n, words[0], words[1]);
    // Redis ACL rules: `user <name> on >password` adds a password in the clear.
    if (/^user\s/i.test(line)) {
        for (const w of words) if (w.startsWith(">") && w.length > 1) add(n, "user ... >password", w.slice(1));
    }
    if (/^(machine|default)$/i.test(words[0])) {
        words.forEach((w, j) => {
            if (NETRC_SECRETS.has(w.toLowerCase()) && j + 1 < words.length) add(n, `the ${w.toLowerCase()} of a .netrc entry`, words[j + 1], true, true);
        });
    }
    for (const m of line.matchAll(/[a-z][a-z0-9+.-]*:\/\/[^\s"'<>,;]+/gi)) {
        const token = tokenUser(m[0]);
        if (token !== undefined) add(n, "the user of a URL (a token)", token, true, true);
    }
}

/**
 * The scalar settings of a YAML document (each document of a stream) that is a mapping or a list,
 * with the line of each key: what a line reader misses, a block scalar (`password: |`), a value on
 * the next line, a quoted string over several lines. A text that is no YAML, or whose document is a
 * single scalar (a properties file, a redis.conf), is left to the line reader.
 */
function yamlSettings(text: string, add: Add): void {
    const lineCounter = new LineCounter();
    let docs: ReturnType<typeof parseAllDocuments>;
    try {
        docs = parseAllDocuments(text, { lineCounter, uniqueKeys: false, prettyErrors: false });
    } catch {
        return;
    }
    if (!Array.isArray(docs)) return;
    const walk = (node: unknown, path: string[]): void => {
        if (isSeq(node)) {
            for (const item of node.items) walk(item, path);
            return;
        }
        if (!isMap(node)) return;
        for (const pair of node.items) {
            const key = isScalar(pair.key) ? pair.key.value : undefined;
            if (typeof key !== "string" && typeof key !== "number") continue;
            const name = String(key);
            const value = pair.value as YamlNode | null;
            if (isScalar(value) && (typeof value.value === "string" || typeof value.value === "number")) {
                const at = (pair.key as YamlNode).range?.[0];
                const line = at === undefined ? 0 : lineCounter.linePos(at).line;
                add(line, name, String(value.value), isRegistryAuth(name, path), true);
            } else {
                walk(value, [...path, name]);
            }
        }
    };
    for (const doc of docs) {
        if (doc.errors.length === 0) walk(doc.contents, []);
    }
}

/** A Docker `config.json`'s `auths.<registry>.auth` (base64 of `user:password`). */
function isRegistryAuth(name: string, path: string[]): boolean {
    return name === "auth" && path.length >= 2 && path[path.length - 2] === "auths";
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

/** Each key of a JSON document with a string or number value (`always`: a registry's auth, whatever its name says). */
function walkJson(value: unknown, path: string[], visit: (name: string, value: string, always: boolean) => void): void {
    if (Array.isArray(value)) {
        for (const v of value) walkJson(v, path, visit);
        return;
    }
    if (value === null || typeof value !== "object") return;
    for (const [k, v] of Object.entries(value)) {
        if (typeof v === "string") visit(k, v, isRegistryAuth(k, path));
        else if (typeof v === "number") visit(k, String(v), false);
        else walkJson(v, [...path, k], visit);
    }
}

/** The 1-based line on which a JSON key first appears. */
function lineOf(text: string, name: string): number {
    const i = text.indexOf(JSON.stringify(name));
    return i < 0 ? 1 : text.slice(0, i).split("\n").length;
}
