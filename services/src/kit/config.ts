/**
 * Configuration from environment variables: one TypeBox schema per service (its own variables,
 * plus the kit's `commonEnv` and its datastores' `datastoreEnv`), validated once at start.
 *
 *   config: {
 *     ACCESS_TOKEN_TTL_S: Type.Integer({ default: 900, minimum: 30, maximum: 3600 }),
 *     JWT_SECRET: Type.String({ minLength: 64, secret: true }),
 *     BOOTSTRAP_ADMIN_EMAIL: Type.Optional(Type.String({ pattern: "^[^\\s@]+@[^\\s@]+$" })),
 *     MARKET_SYMBOLS: envList(Type.String({ pattern: "^[A-Z0-9]{2,20}$" }), { default: ["BTCUSDT"] }),
 *     BINANCE_REST_URL: envUrl({ protocols: ["http", "https"], default: "https://api.binance.com" }),
 *     TRADING_MODE: envEnum(["paper", "live"], { default: "paper" }),
 *   }
 *
 * A variable with `default` is never missing (defaults live in the schema and nowhere else); one wrapped in `Type.Optional`
 * may be unset (`undefined`); any other one is required. Empty (or white space) counts as unset for an optional or required
 * variable; one with a default set empty is refused (session 50: the default would silently replace what the deployer meant).
 * Environment strings are converted by the schema's type (integers, numbers, booleans `true/false/1/0/yes/no/on/off`,
 * comma-separated arrays) and then checked by TypeBox (`Value.Errors`). `loadConfig` reports every problem at once in a
 * `ConfigError` naming the service and each variable, e.g. `Invalid configuration of user-management: POSTGRES_URL is required
 * by user-management; PORT must be <= 65535 (got "99999")`. The schema says what is secret: a variable marked `secret: true` (on
 * itself, its list's items or a member of its union) is never printed, neither in errors (its items included) nor by
 * `describeConfig` (which says "set" and its length), whatever its name or value looks like. Names and shapes are the second
 * net, for a variable not marked: one named like a credential (./credential-words.ts) or a PIN is not printed either when it
 * may hold one (text, a number not named as a measure, a list or union of those: namedLikeACredential), and a URL's password
 * and credential query values, or a `user:password@` item, are masked.
 */
import { FormatRegistry, Type, type SchemaOptions, type Static, type TLiteral, type TObject, type TProperties, type TSchema, type TUnion } from "@sinclair/typebox";
import { Value, ValueErrorType, type ValueError } from "@sinclair/typebox/value";
import { NUMBER_TEXT } from "./numerals";
import { CREDENTIAL_QUERY_PARAM, namedLikeACredential } from "./credential-words";
import { readSecretFiles } from "./secret-files";
import { relationProblems, type EnvRelation } from "./config-relations";

export { namedLikeACredential } from "./credential-words";
export type { EnvRelation } from "./config-relations";

/** The variables of a service (or of the kit, or of a datastore): name -> TypeBox schema. */
export type ConfigSchema = TProperties;
/** The validated values of a schema (`any` stays `any`, so a registry of modules of every config type checks). */
export type ConfigOf<S extends ConfigSchema> = 0 extends 1 & S ? any : Readonly<Static<TObject<S>>>;

/** Options the kit reads on top of JSON Schema's. */
export interface EnvOptions extends SchemaOptions {
  /** Masked when printed; the value is never echoed in an error. */
  secret?: boolean;
  /** At most another variable of the schema (./config-relations.ts): refused at start naming both. */
  atMost?: EnvRelation;
}

if (!FormatRegistry.Has("url")) FormatRegistry.Set("url", (v) => URL.canParse(v));

/** The hosts of `http` URLs `envUrl({ protocols: ["https"], httpToLoopback: true })` takes: this machine only. */
const LOOPBACK_HTTP = "http://(localhost|127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}|\\[::1\\])(:[0-9]{1,5})?([/?#]|$)";

/**
 * A URL; with `protocols` (without the colon), one of those schemes. `httpToLoopback` also takes
 * `http` to a loopback host (a local stand-in of an HTTPS API, as tests run), never to another host:
 * for an upstream the platform sends a credential to (an API key, a bot token in the path), plain
 * `http` elsewhere would put it on the wire in clear.
 */
export function envUrl(options: EnvOptions & { protocols?: readonly string[]; httpToLoopback?: boolean; loginIn?: string } = {}) {
  const { protocols, httpToLoopback, loginIn, ...rest } = options;
  const schemes = protocols ? `(${protocols.join("|")}):` : "";
  // `loginIn`: a client that refuses a `user:password@` URL (naming it whole in its error) takes its login from these variables.
  const noLogin = loginIn ? "(?!//[^/?#]*@)" : "";
  const pattern = httpToLoopback ? `^(${schemes || "https:"}|${LOOPBACK_HTTP})${noLogin}` : `^${schemes}${noLogin}`;
  const checked = protocols || httpToLoopback || loginIn;
  return Type.String({ ...rest, format: "url", ...(checked ? { pattern, protocols: protocols ?? ["https"], httpToLoopback, loginIn } : {}) });
}

/** A comma-separated list of at least one item, each matching `item` (its `description` names the expected form). */
export function envList<T extends TSchema>(item: T, options: EnvOptions = {}) {
  return Type.Array(item, { minItems: 1, ...options });
}

/** One of the given strings. */
export function envEnum<const V extends readonly string[]>(values: V, options: EnvOptions = {}): TUnion<TLiteral<V[number]>[]> {
  return Type.Union(values.map((v: V[number]) => Type.Literal(v)), options);
}

/** A host name, IPv4 or IPv6 address alone (no scheme, port or login; IPv6 has two colons or more): HOST, SMTP_HOST. */
export const HOST_PATTERN = "^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)$";

/** LOG_LEVEL of every service and of the cron runner: pino's levels and silent. */
export const logLevelEnv = () => envEnum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], { default: "info" });

/**
 * Every problem of a service's configuration, the message naming the service (main.ts logs it alone; session 62); each problem,
 * some built outside loadConfig (TRUST_PROXY's parser quoted a value whole), with a URL's password masked, of at most PROBLEM_MAX.
 */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(readonly service: string, problems: string[]) {
    const bounded = problems.map((p) => (p.length > PROBLEM_MAX ? `${withoutPasswords(p.slice(0, 4 * PROBLEM_MAX)).slice(0, PROBLEM_MAX)}...` : withoutPasswords(p)));
    super(`Invalid configuration of ${service}: ${bounded.join("; ")}`);
    this.problems = bounded;
    this.name = "ConfigError";
  }
}
const PROBLEM_MAX = 1_000;
const ECHOED_VALUE_MAX = 4_096; // the longest value a problem echoes (masked); a longer one by its length: masking is not linear

/** Whether the schema marks a variable secret: on itself, on its list's items or on a member of its union. */
export function isSecret(s: TSchema | undefined): boolean {
  if (!s) return false;
  if ((s as EnvOptions).secret === true) return true;
  const inner: unknown[] = [s.items, ...((s.anyOf as unknown[] | undefined) ?? []), ...((s.allOf as unknown[] | undefined) ?? [])];
  return inner.some((i) => typeof i === "object" && i !== null && isSecret(i as TSchema));
}

/**
 * A variable whose value is never printed: marked secret in the schema (the source of truth), or,
 * as a second net for one whose schema forgot, named like a credential and of a type that may hold
 * one (./credential-words.ts namedLikeACredential).
 */
function notPrinted(name: string, s: TSchema | undefined): boolean {
  return isSecret(s) || namedLikeACredential(name, s);
}

const TRUE = ["1", "true", "yes", "on"];
const FALSE = ["0", "false", "no", "off"];

/**
 * The environment string as the schema's type (a number untrimmed: PORT=" 80" is refused as LOG_LEVEL=" info" is; a boolean
 * is taken loosely, session 50); else the string, for TypeBox to name.
 */
function fromEnvString(raw: string, schema: TSchema): unknown {
  switch (schema.type) {
    case "integer":
      return /^-?\d+$/.test(raw) && Number.isSafeInteger(Number(raw)) ? Number(raw) : raw;
    case "number":
      return NUMBER_TEXT.test(raw) && Number.isFinite(Number(raw)) ? Number(raw) : raw;
    case "boolean":
      return TRUE.includes(raw.trim().toLowerCase()) ? true : FALSE.includes(raw.trim().toLowerCase()) ? false : raw;
    case "array":
      return raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    default:
      return raw;
  }
}

/**
 * A value as an error may echo it: the password of a `user:password@` part masked, as describeConfig
 * masks it. A variable not declared secret may still hold one there (CLICKHOUSE_URL, ARANGO_URL,
 * WEAVIATE_URL with a login, a broker list item written `user:password@host:port`), and a value
 * refused for its protocol or shape was echoed whole into the error the service dies with.
 */
function withoutPasswords(raw: string): string {
  // After `scheme://`, or at the start of an item (a broker); up to the last `@` (a password may hold
  // `/` or `@`: `[^\s@]*` stopped at its first `@` and printed the rest).
  const masked = raw.includes("://") ? raw.replace(/(\/\/[^\s/@:]*):[^\s]*@/g, "$1:***@") : raw.replace(/^([^\s/@:]*):[^\s]*@/, "$1:***@");
  // And a login a driver or an API takes in the query, whatever its value looks like (`?password=`, `&access_token=`:
  // ./credential-words.ts CREDENTIAL_QUERY_PARAM), as maskUrl masks it.
  return masked.replace(/([?&])([^=&#\s]*)=([^&#\s]*)/g, (pair, sep: string, name: string) => (CREDENTIAL_QUERY_PARAM.test(name) ? `${sep}${name}=***` : pair));
}

/** What is wrong with a variable, in words (without its value). */
function describeProblem(e: ValueError, root: TSchema, secret: boolean): string {
  const s = e.schema as TSchema & Record<string, unknown>;
  const item = e.path.split("/").length > 2;
  // An item of a secret list is named by its position only; the value is masked only when shown (masking is not linear).
  const shown = () => (secret ? `#${Number(e.path.split("/")[2]) + 1}` : String(e.value).length > ECHOED_VALUE_MAX ? `of ${String(e.value).length} characters` : `"${withoutPasswords(String(e.value))}"`);
  if (item) return `has an invalid item ${shown()} (expected ${s.description ?? (s.pattern ? `to match /${s.pattern}/` : "a valid item")})`;
  switch (e.type) {
    case ValueErrorType.Integer:
      return "must be an integer";
    case ValueErrorType.Number:
      return "must be a number";
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `must be >= ${s.minimum}`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return s.maximum === MAX_TIMER_MS ? `must be <= ${s.maximum} (Node's longest timer)` : `must be <= ${s.maximum}`;
    case ValueErrorType.Boolean:
      return "must be true or false";
    case ValueErrorType.StringMinLength:
      return `must be at least ${s.minLength} characters long`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${s.maxLength} characters long`;
    case ValueErrorType.StringFormat:
      return "must be a URL";
    case ValueErrorType.StringPattern: {
      const { protocols, httpToLoopback, loginIn } = root as { protocols?: string[]; httpToLoopback?: boolean; loginIn?: string };
      const value = String(e.value);
      const allowed = (protocols ?? []).some((p) => value.toLowerCase().startsWith(`${p}:`));
      if (loginIn && allowed && /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value)) return `must not hold a login (set it in ${loginIn})`;
      const loopback = httpToLoopback ? " (http only to a loopback host: localhost, 127.x.x.x, [::1])" : "";
      return protocols ? `must be a URL with protocol ${protocols.join(" or ")}${loopback}` : `must match /${s.pattern}/`;
    }
    case ValueErrorType.Union:
      return `must be one of ${(s.anyOf as Array<{ const: unknown }>).map((l) => l.const).join(", ")}`;
    case ValueErrorType.ArrayMinItems:
      return "must list at least one item";
    default:
      return e.message.toLowerCase();
  }
}

/**
 * Node's longest timer: setTimeout and setInterval given more fire after 1 ms (a TimeoutOverflowWarning),
 * so a timeout of 3,000,000,000 ms would time out at once and an interval would spin. Every `*_MS`
 * number without a maximum of its own gets this one.
 */
export const MAX_TIMER_MS = 2_147_483_647;

function withTimerBound(name: string, s: TSchema): TSchema {
  if (!name.endsWith("_MS") || (s.type !== "integer" && s.type !== "number") || s.maximum !== undefined) return s;
  return { ...s, maximum: MAX_TIMER_MS };
}

/**
 * Reads the variables of `schema` from `source` (default `process.env`), applies the schema's
 * defaults and validates them. Throws a ConfigError listing every problem, each naming its
 * variable (and, when missing, the service that requires it). A variable the schema marks secret
 * may be given as `<NAME>_FILE`, the path of a file holding it (./secret-files.ts).
 */
export function loadConfig<S extends ConfigSchema>(service: string, declared: S, env: NodeJS.ProcessEnv = process.env): ConfigOf<S> {
  const schema: ConfigSchema = Object.fromEntries(Object.entries(declared).map(([name, s]) => [name, withTimerBound(name, s)]));
  const { source, problems: fileProblems } = readSecretFiles(env, Object.keys(schema), (name) => isSecret(schema[name]));
  if (fileProblems.length > 0) throw new ConfigError(service, fileProblems);
  const object = Type.Object(schema);
  const value: Record<string, unknown> = {};
  // Set but empty where a default exists: the default would replace what the deployer meant (a
  // `${VAR}` that expanded to nothing, a missing ConfigMap key) without a word.
  const empty: string[] = [];
  for (const [name, s] of Object.entries(schema)) {
    const raw = source[name];
    if (raw !== undefined && raw.trim() !== "") value[name] = fromEnvString(raw, s);
    else if (raw !== undefined && hasDefaultOtherThanEmpty(s)) empty.push(name);
  }
  const emptyProblems = empty.map((name) => emptyProblem(name, schema[name]));
  Value.Default(object, value);

  // First problem per variable; a malformed URL is said before its protocol.
  const first = new Map<string, ValueError>();
  for (const e of Value.Errors(object, value)) {
    const name = e.path.split("/")[1];
    const seen = first.get(name);
    if (!seen || (e.type === ValueErrorType.StringFormat && seen.type === ValueErrorType.StringPattern)) first.set(name, e);
  }
  const problems = [...first].map(([name, e]) => {
    if (e.type === ValueErrorType.ObjectRequiredProperty) return `${name} is required by ${service}`;
    const raw = source[name] ?? "";
    // Never echo the raw value of a secret.
    const secret = notPrinted(name, schema[name]);
    // A list item by item: each may hold its own login (`u:p@h1:9092,u:q@h2:9092`). A long value only by its length.
    const shown = raw.length > ECHOED_VALUE_MAX ? "" : schema[name].type === "array" ? raw.split(",").map(withoutPasswords).join(",") : withoutPasswords(raw);
    const got = secret ? "" : raw.length > ECHOED_VALUE_MAX ? ` (got ${raw.length} characters)` : ` (got "${shown.length > 80 ? shown.slice(0, 80) + "..." : shown}")`;
    return `${name} ${describeProblem(e, schema[name], secret)}${got}`;
  });
  // Then the pairs (a batch and its cap, a lease and its renewal), of the variables valid alone.
  const relations = relationProblems(schema, value, new Set([...empty, ...first.keys()]), (n) => !notPrinted(n, schema[n]));
  if (emptyProblems.length + problems.length + relations.length > 0) throw new ConfigError(service, [...emptyProblems, ...problems, ...relations]);
  return value as ConfigOf<S>;
}

/** Whether a variable has a default an empty value would silently stand for (an empty default changes nothing). */
function hasDefaultOtherThanEmpty(s: TSchema): boolean {
  return s.default !== undefined && s.default !== "" && !(Array.isArray(s.default) && s.default.length === 0);
}

function emptyProblem(name: string, s: TSchema): string {
  const def = notPrinted(name, s) ? "its default" : `its default, ${JSON.stringify(Array.isArray(s.default) ? s.default.join(",") : s.default)}`;
  return `${name} is set but empty: give it a value, or unset it for ${def}`;
}

/**
 * A printable copy of a config: a secret (the schema's mark, or a credential's name: notPrinted) is
 * only said to be set, with its length ("set (64 characters)", "set (2 items)"); in the other values
 * (and list items) the password of a URL or of a `user:password@` item and credential query values are masked.
 */
export function describeConfig(config: Record<string, unknown>, schema: ConfigSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(config)) {
    if (value === undefined) continue;
    out[name] = notPrinted(name, schema[name]) ? secretSet(value) : Array.isArray(value) ? value.map(withoutLogins) : withoutLogins(value);
  }
  return out;
}

const secretSet = (value: unknown): string =>
  Array.isArray(value) ? `set (${value.length} items)` : typeof value === "string" ? `set (${value.length} characters)` : "set";

function withoutLogins(value: unknown): unknown {
  if (typeof value !== "string") return value;
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? maskUrl(value) : withoutPasswords(value);
}

export function maskUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = "***";
    for (const name of new Set(u.searchParams.keys())) if (CREDENTIAL_QUERY_PARAM.test(name)) u.searchParams.set(name, "***");
    return u.toString();
  } catch {
    return raw;
  }
}
