/**
 * Hostile requests generated from the routes every service registered (kit `Service.routes`:
 * method, URL pattern, TypeBox schemas), so a new service or route is covered without editing
 * this file. Families: encoding, sizes, nesting, types, numbers, injection, prototype pollution.
 */
import type { RouteInfo } from "../../services/src/kit";

export interface HostileCase {
  family: string;
  name: string;
  method: string;
  /** Path relative to the service root (e.g. "/orders/..."), already encoded as sent. */
  path: string;
  headers?: Record<string, string>;
  /** Raw body text (sent as is). */
  body?: string;
}

type Schema = { type?: string; properties?: Record<string, Schema>; required?: string[]; allOf?: Schema[]; format?: string; pattern?: string; minimum?: number; anyOf?: Schema[]; const?: unknown; items?: Schema; minLength?: number; enum?: unknown[] };

const UUID = "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e";

/** A plausible value for a schema (valid where it is easy, so mutations reach deeper checks). */
export function sample(s: Schema | undefined, depth = 0): unknown {
  if (!s || depth > 4) return "x";
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  if (s.anyOf) return sample(s.anyOf.find((a) => a.type !== "null") ?? s.anyOf[0], depth + 1);
  switch (s.type) {
    case "object": {
      const o: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.properties ?? {})) o[k] = sample(v, depth + 1);
      return o;
    }
    case "array":
      return [sample(s.items, depth + 1)];
    case "integer":
    case "number":
      return Math.max(1, s.minimum ?? 1);
    case "boolean":
      return true;
    case "null":
      return null;
    default:
      if (s.format === "uuid") return UUID;
      if (s.format === "email") return "someone@example.com";
      if (s.format === "date-time") return new Date().toISOString();
      if (s.pattern?.includes("A-Z")) return "BTCUSDT";
      if (s.pattern?.includes("\\d") || s.pattern?.includes("0-9")) return "1";
      return "x".repeat(Math.max(1, s.minLength ?? 1));
  }
}

/** Path params filled with a sample (uuid-shaped by default). */
function fill(url: string, params: Schema | undefined, override?: [string, string]): string {
  return url
    .replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => {
      if (override && override[0] === name) return override[1];
      const v = sample(params?.properties?.[name]);
      return encodeURIComponent(typeof v === "string" ? v : String(v ?? UUID));
    })
    .replace(/\*$/, "x");
}

const json = (v: unknown) => JSON.stringify(v);

/** Hostile replacements of one value (raw JSON text). */
const VALUE_MUTATIONS: Array<[string, string]> = [
  ["null", "null"],
  ["wrong type: object", '{"a":1}'],
  ["wrong type: array", "[1,2]"],
  ["wrong type: bool", "true"],
  ["number 1e309 (Infinity)", "1e309"],
  ["number -0", "-0"],
  ["number huge", "123456789012345678901234567890"],
  ["number over-precision", "0.1000000000000000055511151231257827"],
  ["number negative", "-1"],
  ['string "NaN"', json("NaN")],
  ['string " 100"', json(" 100")],
  ['string "0x64"', json("0x64")],
  ["string empty", json("")],
  ["string NUL", json("a\u0000b")],
  ["string lone surrogate", '"a\\ud800b"'],
  ["string SQL", json("'; DROP TABLE users; --")],
  ["string CRLF", json("a\r\nX-Injected: 1")],
  ["string 100k", json("x".repeat(100_000))],
  ["prototype key", '{"__proto__":{"admin":true}}'],
  // Names every JavaScript object answers, as a value and as keys: a table looked up by them (`t[name]`,
  // `name in t`) takes the object's own member for an entry.
  ['string "constructor"', json("constructor")],
  ['string "toString"', json("toString")],
  ["object member keys", '{"constructor":1,"toString":"x","hasOwnProperty":[]}'],
  ["decimal string 40 digits", json("9".repeat(40))],
  ["decimal string 20.18 digits", json(`${"9".repeat(20)}.${"9".repeat(18)}`)],
  ["decimal string tiny", json("0.000000000000000000001")],
  ["number 2^53+1", "9007199254740993"],
  ["number 2^31", "2147483648"],
  ["number 1e-7", "1e-7"],
  ["number 1e21", "1e21"],
  ["date year 9999", json("9999-12-31T23:59:59Z")],
  ["date year 0001", json("0001-01-01T00:00:00Z")],
  ["date 1969", json("1969-12-31T23:59:59.999Z")],
  ["date Feb 29 2023", json("2023-02-29T00:00:00Z")],
  ["date offset +14:00", json("2024-01-01T00:00:00+14:00")],
  ["string 300 chars", json("x".repeat(300))],
  ["string RTL and emoji", json("\u202e\ud83d\ude00")],
];

/** Hostile values of one query-string parameter (already encoded as sent). */
const QUERY_VALUE_MUTATIONS: Array<[string, string]> = [
  ["empty", ""],
  ["1e309", "1e309"],
  ["-1", "-1"],
  ["0", "0"],
  ["1.5", "1.5"],
  ["huge", "99999999999999999999"],
  ["2^31", "2147483648"],
  ["NaN", "NaN"],
  ["NUL", "%00"],
  ["bad percent", "%zz"],
  ["date year 9999", encodeURIComponent("9999-12-31T23:59:59Z")],
  ["date year 0001", encodeURIComponent("0001-01-01T00:00:00Z")],
  ["date 1969", encodeURIComponent("1969-12-31T23:59:59Z")],
  ["epoch ms huge", "253402300800000"],
  ["long", "a".repeat(5000)],
  ["SQL", encodeURIComponent("1' OR '1'='1")],
  ["constructor", "constructor"],
  ["toString", "toString"],
];

/** base64url of a text (or of raw bytes, for invalid UTF-8): how an opaque page cursor is spelled. */
const b64url = (v: string | number[]) => (typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v)).toString("base64url");

/**
 * Crafted values of a page cursor (`before`, the previous page's `nextBefore`), well-formed base64url
 * where the route's pattern wants it, so they pass validation and reach the decoder and the datastore:
 * the request guards refuse U+0000 and lone surrogates in the query itself, not inside the base64.
 * A route whose cursor is an id reads them as unknown ids (a 400 naming before).
 */
const CURSOR_MUTATIONS: Array<[string, string]> = [
  ["base64 of not JSON", b64url("not json")],
  ["base64 of invalid UTF-8", b64url([0xc0, 0xaf, 0xff, 0xfe])],
  ["base64 of a JSON object", b64url('{"user":"a","route":"b","key":"c"}')],
  ["base64 of JSON null", b64url("null")],
  ["base64 of 1e309", b64url("1e309")],
  ["base64 of numbers", b64url("[1,2,3]")],
  ["base64 of too many strings", b64url('["a","b","c","d"]')],
  ["base64 of nested arrays", b64url('[["a"],["b"],["c"]]')],
  ["base64 of escaped U+0000", b64url('["a\\u0000b","/api/orders",""]')],
  ["base64 of a raw NUL", b64url('["a\u0000b","/api/orders",""]')],
  ["base64 of lone surrogates", b64url('["\\ud800","\\udc00",""]')],
  ["base64 of quotes, tabs and backslashes", b64url(JSON.stringify(["a'\\\t", "b' OR 1=1 --\n", "\r"]))],
  ["base64 of another user's place", b64url(JSON.stringify([UUID, "", ""]))],
  ["base64 of 3,000 characters", b64url(JSON.stringify(["x".repeat(1000), "y".repeat(1000), "z".repeat(1000)]))],
  ["base64 of a __proto__ array", b64url('{"__proto__":["a","b","c"],"length":3}')],
  ["padded base64", `${b64url('["a","b","c"]')}%3D%3D`],
];

const PARAM_MUTATIONS: Array<[string, string]> = [
  ["NUL", "%00"],
  ["bad percent", "%zz"],
  ["invalid UTF-8", "%C0%AF"],
  ["encoded lone surrogate", "%ED%A0%80"],
  ["traversal", "..%2F..%2Finternal"],
  ["SQL", encodeURIComponent("1' OR '1'='1")],
  ["long", "a".repeat(5000)],
  ["__proto__", "__proto__"],
  ["constructor", "constructor"],
  ["emoji", "%F0%9F%98%80"],
  // Accepted by ajv-formats' uuid (RFC 4122 URN form); PostgreSQL's uuid refuses it.
  ["urn:uuid: prefix", `urn:uuid:${UUID}`],
  ["uuid in braces", `%7B${UUID}%7D`],
  ["uuid upper case", UUID.toUpperCase()],
];

const QUERY_MUTATIONS: Array<[string, string]> = [
  ["limit=1e309", "limit=1e309"],
  ["limit=-0", "limit=-0"],
  ["limit=NaN", "limit=NaN"],
  ["limit huge", "limit=99999999999999999999999"],
  ["status NUL", "status=%00"],
  ["bad percent", "q=%zz&limit=%"],
  ["array pollution", "limit=1&limit=2&limit[]=3"],
  ["proto pollution", "__proto__[admin]=true&constructor[prototype][admin]=true"],
  ["SQL", `symbol=${encodeURIComponent("BTC' OR 1=1 --")}`],
  ["CRLF", "x=%0d%0aSet-Cookie:%20a=b"],
];

const BODY_MUTATIONS: Array<[string, string, string?]> = [
  ["not JSON", "{not json"],
  ["empty JSON body", ""],
  ["array instead of object", "[]"],
  ["nested 5000", "[".repeat(5000) + "]".repeat(5000)],
  ["object nested 200", '{"a":'.repeat(200) + "1" + "}".repeat(200)],
  ["constructor.prototype", '{"constructor":{"prototype":{"admin":true}}}'],
  ["2 MB", json({ x: "y".repeat(2 * 1024 * 1024) })],
  ["wrong content-type", "a=1&b=2", "application/x-www-form-urlencoded"],
  ["text/plain JSON", "{}", "text/plain"],
];

/** Hostile headers on an otherwise valid request (the body, when the route takes one, is valid). */
const HEADER_MUTATIONS: Array<[string, Record<string, string>]> = [
  ["Idempotency-Key 10k", { "idempotency-key": "k".repeat(10_000) }],
  ["Idempotency-Key latin1", { "idempotency-key": "\u00ff\u00e9" }],
  ["Idempotency-Key SQL", { "idempotency-key": "a' OR '1'='1" }],
  ["Idempotency-Key empty", { "idempotency-key": "" }],
  ["content-type charset utf-16", { "content-type": "application/json; charset=utf-16" }],
  ["content-type malformed", { "content-type": "application/json;;;=" }],
  ["content-type vendor +json", { "content-type": "application/vnd.evil+json" }],
  ["content-encoding gzip (not gzipped)", { "content-encoding": "gzip" }],
  ["x-request-id 10k", { "x-request-id": "r".repeat(10_000) }],
  ["x-forwarded-for garbage", { "x-forwarded-for": "not-an-ip, 999.999.999.999, ::1, " }],
  ["accept xml", { accept: "application/xml" }],
  ["traceparent malformed", { traceparent: "00-zz-yy-01", tracestate: "a=\u00ff".repeat(100) }],
  ["x-api-key garbage beside the token", { "x-api-key": "atk_" + "z".repeat(300) }],
];

/** Walks a sample body: the path of every property, nested objects and first array items included. */
function fieldPaths(v: unknown, prefix: string[] = [], depth = 0): string[][] {
  if (depth > 3 || v === null || typeof v !== "object") return [];
  const entries = Array.isArray(v) ? (v.length ? [["0", v[0]] as const] : []) : Object.entries(v);
  return entries.flatMap(([k, x]) => [[...prefix, k], ...fieldPaths(x, [...prefix, k], depth + 1)]);
}

/** `body` as JSON text with the value at `path` replaced by the raw JSON text `raw`. */
function withValueAt(body: unknown, path: string[], raw: string): string {
  const copy = JSON.parse(JSON.stringify(body)) as Record<string, unknown>;
  let at: Record<string, unknown> = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
  at[path[path.length - 1]] = "__HOLE__";
  return json(copy).replace('"__HOLE__"', raw);
}

/** A plausible request for one route (sample path parameters and, unless GET or DELETE, a sample body): what the cases mutate. */
export function plausibleRequest(route: RouteInfo): { path: string; body?: Record<string, unknown> } {
  const schema = (route.schema ?? {}) as { body?: Schema; params?: Schema };
  const withBody = route.method !== "GET" && route.method !== "DELETE";
  return { path: fill(route.url, schema.params), body: withBody ? (sample(schema.body ?? { type: "object", properties: {} }) as Record<string, unknown>) : undefined };
}

/** Every hostile case for one route. */
export function casesFor(route: RouteInfo): HostileCase[] {
  const out: HostileCase[] = [];
  const schema = (route.schema ?? {}) as { params?: Schema; querystring?: Schema };
  const { path: base, body: validBody } = plausibleRequest(route);
  const withBody = validBody !== undefined;
  const add = (family: string, name: string, path: string, body?: string, contentType = "application/json") =>
    out.push({ family, name: `${route.method} ${route.url} ${family}: ${name}`, method: route.method, path, body, headers: body !== undefined ? { "content-type": contentType } : undefined });

  for (const name of Object.keys(schema.params?.properties ?? {}).concat(/\*$/.test(route.url) ? ["*"] : []))
    for (const [label, value] of PARAM_MUTATIONS) add("encoding", `param ${name} ${label}`, name === "*" ? route.url.replace(/\*$/, value) : fill(route.url, schema.params, [name, value]));
  for (const [label, q] of QUERY_MUTATIONS) add("query", label, `${base}?${q}`, withBody ? json(validBody) : undefined);
  // Each parameter the route declares, alone hostile, beside valid values of the required others.
  const query = schema.querystring;
  const validQuery = query ? Object.entries(sample(query) as Record<string, unknown>).filter(([k]) => query.required?.includes(k)) : [];
  for (const prop of Object.keys(query?.properties ?? {}))
    for (const [label, v] of QUERY_VALUE_MUTATIONS) {
      const others = validQuery.filter(([k]) => k !== prop).map(([k, x]) => `${k}=${encodeURIComponent(String(x))}`);
      add("query", `${prop}=${label}`, `${base}?${[...others, `${prop}=${v}`].join("&")}`, withBody ? json(validBody) : undefined);
    }
  // A page cursor crafted rather than taken from a page's nextBefore.
  if (query?.properties?.before) {
    const others = validQuery.filter(([k]) => k !== "before").map(([k, x]) => `${k}=${encodeURIComponent(String(x))}`);
    for (const [label, v] of CURSOR_MUTATIONS) add("cursor", `before=${label}`, `${base}?${[...others, `before=${v}`].join("&")}`, withBody ? json(validBody) : undefined);
  }
  if (withBody) {
    for (const [label, raw, type] of BODY_MUTATIONS) add("body", label, base, raw, type);
    for (const path of fieldPaths(validBody))
      for (const [label, raw] of VALUE_MUTATIONS) add("field", `${path.join(".")} ${label}`, base, withValueAt(validBody, path, raw));
    add("field", "unknown property", base, json({ ...validBody, role: "admin", userId: UUID }));
  }
  for (const [label, headers] of HEADER_MUTATIONS)
    out.push({ family: "headers", name: `${route.method} ${route.url} headers: ${label}`, method: route.method, path: base, body: withBody ? json(validBody) : undefined, headers: { ...(withBody ? { "content-type": "application/json" } : {}), ...headers } });
  // The route's path made odd: a trailing slash, a doubled slash, another case, another method.
  const other = route.method === "GET" ? "DELETE" : "GET";
  for (const [label, path, method] of [
    ["trailing slash", `${base}/`, route.method],
    ["double slash", `/${base}`, route.method],
    ["upper case", base.toUpperCase(), route.method],
    [`method ${other}`, base, other],
    ["method OPTIONS", base, "OPTIONS"],
    ["method HEAD", base, "HEAD"],
  ] as const)
    out.push({ family: "path", name: `${route.method} ${route.url} path: ${label}`, method, path, body: withBody && method !== "GET" && method !== "HEAD" ? json(validBody) : undefined, headers: withBody ? { "content-type": "application/json" } : undefined });
  return out;
}

/** Numbers spelled other than in decimal, which JavaScript's Number() (and so ajv's coercion) reads as numbers. */
const NON_DECIMAL_NUMERALS: Array<[string, string]> = [
  ["hex", "0x10"],
  ["binary", "0b11"],
  ["octal", "0o7"],
  ["padded", "%2010"],
  ["plus sign", "%2B5"],
  ["Infinity", "Infinity"],
];

const isNumeric = (s: Schema | undefined): boolean =>
  !!s && (s.type === "integer" || s.type === "number" || (!!s.anyOf && s.anyOf.every((a) => a.type === "integer" || a.type === "number" || a.type === "null")));

/**
 * For every number a route takes in its query or path, the same request with that number spelled
 * other than in decimal: each must be a 400 naming the parameter (kit numerals.ts), not read as a number.
 * `control` is the same request with the number in decimal (16): where the sample request is refused
 * for another of its parts, the number is never reached and the case says nothing.
 */
export function nonDecimalCasesFor(route: RouteInfo): Array<HostileCase & { field: string; control: string }> {
  const schema = (route.schema ?? {}) as { params?: Schema; querystring?: Schema };
  const { path: base, body } = plausibleRequest(route);
  const withBody = body !== undefined;
  const common = { method: route.method, body: withBody ? json(body) : undefined, headers: withBody ? { "content-type": "application/json" } : undefined };
  const out: Array<HostileCase & { field: string; control: string }> = [];
  const query = schema.querystring;
  const required = query ? Object.entries(sample(query) as Record<string, unknown>).filter(([k]) => query.required?.includes(k)) : [];
  for (const [prop, s] of Object.entries(query?.properties ?? {})) {
    if (!isNumeric(s)) continue;
    const others = required.filter(([k]) => k !== prop).map(([k, x]) => `${k}=${encodeURIComponent(String(x))}`);
    const at = (v: string) => `${base}?${[...others, `${prop}=${v}`].join("&")}`;
    for (const [label, v] of NON_DECIMAL_NUMERALS)
      out.push({ ...common, family: "numeral", field: prop, name: `${route.method} ${route.url} numeral: ${prop}=${label}`, path: at(v), control: at("16") });
  }
  for (const [prop, s] of Object.entries(schema.params?.properties ?? {})) {
    if (!isNumeric(s)) continue;
    for (const [label, v] of NON_DECIMAL_NUMERALS)
      out.push({ ...common, family: "numeral", field: prop, name: `${route.method} ${route.url} numeral: :${prop}=${label}`, path: fill(route.url, schema.params, [prop, v]), control: fill(route.url, schema.params, [prop, "16"]) });
  }
  return out;
}

/** A querystring schema as one object: its properties and required names, with those of an allOf's parts (Type.Intersect). */
function flatQuery(s: Schema): { properties: Record<string, Schema>; required: string[] } {
  const parts = [s, ...(s.allOf ?? [])];
  return { properties: Object.assign({}, ...parts.map((x) => x.properties ?? {})), required: parts.flatMap((x) => x.required ?? []) };
}

/** Texts tried, in order, for a string parameter with a pattern: the first it matches is sent. */
const PATTERN_CANDIDATES = [UUID, "pm_sample", "0123456789abcdef0123456789abcdef", "BTCUSDT", "1", "x", "a:b"];

/** A value a parameter's schema takes: sample(), with a text its pattern matches where there is one. */
function validSample(s: Schema | undefined): unknown {
  if (s?.type === "string" && s.pattern && !s.format) {
    const re = new RegExp(s.pattern);
    const hit = PATTERN_CANDIDATES.find((c) => re.test(c));
    if (hit !== undefined) return hit;
  }
  return sample(s);
}

/** The parameter name the undeclared-parameter cases send: no route declares it. */
export const UNDECLARED_PARAMETER = "zzUndeclared";

/**
 * For a route: `control`, the plausible request with sampled values of the parameters it requires;
 * `undeclared`, the same with a parameter no route declares and `typo`, with one a letter longer
 * than a declared one (`statuss`; `limits` on a route taking none), each to be a 400 naming it (kit
 * query-parameters.ts: a route without a querystring schema of its own takes none); `known`, each
 * declared parameter with a sampled value, never refused as undeclared. Undefined for a route
 * declaring that it takes any query (`takesAnyQuery`: the gateway's `/api/*`).
 */
export function undeclaredParameterCasesFor(route: RouteInfo):
  | { method: string; body?: string; headers?: Record<string, string>; control: string; undeclared: string; typo: { path: string; field: string }; known: Array<{ name: string; path: string }> }
  | undefined {
  if (route.takesAnyQuery) return undefined;
  const schema = (route.schema ?? {}) as { querystring?: Schema };
  const { properties, required } = flatQuery(schema.querystring ?? {});
  const { body } = plausibleRequest(route);
  const params = (route.schema as { params?: Schema } | undefined)?.params;
  const base = route.url.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => encodeURIComponent(String(validSample(params?.properties?.[name]) ?? UUID)));
  const value = (k: string) => `${k}=${encodeURIComponent(String(validSample(properties[k])))}`;
  const requiredPairs = required.map(value);
  const at = (...pairs: string[]) => (pairs.length > 0 ? `${base}?${pairs.join("&")}` : base);
  const names = Object.keys(properties);
  const typo = `${names[0] ?? "limit"}s`;
  return {
    method: route.method,
    body: body !== undefined ? json(body) : undefined,
    headers: body !== undefined ? { "content-type": "application/json" } : undefined,
    control: at(...requiredPairs),
    undeclared: at(...requiredPairs, `${UNDECLARED_PARAMETER}=1`),
    typo: { path: at(...requiredPairs, `${typo}=1`), field: typo },
    known: names.filter((k) => !required.includes(k)).map((k) => ({ name: k, path: at(...requiredPairs, value(k)) })),
  };
}
