/**
 * OFFLINE-ONLY PATH: client-side binding of ClickHouse `{name:Type}` placeholders, for servers that
 * predate server-side query parameters (before 20.x).
 *
 * Why it exists: Debian ships ClickHouse 18.16, and that is what this machine can run: the local
 * image (images/clickhouse), the dev stack and the test harness. Production pins the upstream 24.8
 * image, where ./client.ts sends parameters to the server (the default path) and none of this runs.
 * Against an 18.16 server the kit binds each value itself: checked against its declared type and
 * rendered as a literal (strings quoted with backslash escaping, numbers validated), which keeps
 * the `{name:Type}` syntax and its injection safety on the old server. When the local image moves to
 * a server >= 20 this module can go.
 */

import { ANY_CASE_UUID_RE } from "../identity";

/** True for a `version()` string older than 20 (or unparsable: treated as the oldest). */
export function isLegacyServerVersion(version: string): boolean {
  const major = Number(version.split(".")[0]);
  return !Number.isFinite(major) || major < 20;
}

const placeholder = /\{([A-Za-z_][A-Za-z0-9_]*):([^{}]+)\}/g;

export class ClickHouseParamError extends Error {}

export function quoteString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");
function dateTime(d: Date, fraction: boolean): string {
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return fraction ? `${base}.${pad(d.getUTCMilliseconds(), 3)}` : base;
}

/** Splits "A, B" at top-level commas (for Tuple/Map). */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

export function formatValue(value: unknown, type: string, name: string): string {
  const t = type.trim();
  const inner = (prefix: string) => (t.startsWith(`${prefix}(`) && t.endsWith(")") ? t.slice(prefix.length + 1, -1) : undefined);
  const fail = (why: string): never => {
    throw new ClickHouseParamError(`query parameter ${name} (${t}): ${why}`);
  };
  const nullable = inner("Nullable");
  if (nullable !== undefined) return value === null || value === undefined ? "NULL" : formatValue(value, nullable, name);
  const lc = inner("LowCardinality");
  if (lc !== undefined) return formatValue(value, lc, name);
  if (value === null || value === undefined) fail("missing value");
  const arr = inner("Array");
  if (arr !== undefined) {
    if (!Array.isArray(value)) fail("expected an array");
    return `[${(value as unknown[]).map((v) => formatValue(v, arr, name)).join(", ")}]`;
  }
  const tuple = inner("Tuple");
  if (tuple !== undefined) {
    const types = splitTop(tuple);
    if (!Array.isArray(value) || value.length !== types.length) fail(`expected a tuple of ${types.length}`);
    return `(${types.map((ty, i) => formatValue((value as unknown[])[i], ty, name)).join(", ")})`;
  }
  if (/^(U?Int(8|16|32|64|128|256))$/.test(t)) {
    if (typeof value === "bigint") return value.toString();
    if (typeof value === "boolean") return value ? "1" : "0";
    if (typeof value === "number" && Number.isInteger(value)) return String(value);
    if (typeof value === "string" && /^-?\d+$/.test(value)) return value;
    return fail("expected an integer");
  }
  if (/^(Float(32|64)|Decimal(32|64|128|256)?\(.*\))$/.test(t)) {
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
    if (typeof value === "string" && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value)) return value;
    return fail("expected a finite number");
  }
  if (t === "Bool" || t === "Boolean") {
    if (typeof value !== "boolean") fail("expected a boolean");
    return value ? "1" : "0";
  }
  if (t === "Date" || t === "Date32") {
    if (value instanceof Date) return quoteString(dateTime(value, false).slice(0, 10));
    if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value)) return quoteString(value);
    return fail("expected a Date or YYYY-MM-DD");
  }
  if (/^DateTime(64)?(\(.*\))?$/.test(t)) {
    const frac = t.startsWith("DateTime64");
    if (value instanceof Date) return quoteString(dateTime(value, frac));
    if (typeof value === "number" && Number.isFinite(value)) return quoteString(dateTime(new Date(value), frac));
    if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,9})?$/.test(value)) return quoteString(value.replace("T", " "));
    return fail("expected a Date, epoch ms or 'YYYY-MM-DD hh:mm:ss'");
  }
  if (t === "UUID") {
    // The kit's UUID pattern (any case, as ClickHouse reads a UUID): the literal is quoted anyway, the
    // pattern only keeps a value the server would refuse from reaching it.
    if (typeof value === "string" && ANY_CASE_UUID_RE.test(value)) return quoteString(value);
    return fail("expected a UUID");
  }
  if (t === "String" || /^FixedString\(\d+\)$/.test(t) || /^Enum(8|16)?\(.*\)$/.test(t)) {
    if (typeof value === "string") return quoteString(value);
    if (typeof value === "number" || typeof value === "bigint") return quoteString(String(value));
    return fail("expected a string");
  }
  return fail("unsupported type");
}

/** Replaces every `{name:Type}` with the literal of params[name]; unknown names are an error. */
export function bindParamsForLegacyServer(sql: string, params: Record<string, unknown>): string {
  return sql.replace(placeholder, (_m, name: string, type: string) => {
    if (!(name in params)) throw new ClickHouseParamError(`query parameter ${name} has no value`);
    return formatValue(params[name], type, name);
  });
}

