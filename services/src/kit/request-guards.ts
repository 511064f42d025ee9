/**
 * What every service refuses before a handler runs, whatever the route: JSON nested deeper than
 * JSON_MAX_DEPTH (checked by a linear scan before JSON.parse, so no recursion ever sees it),
 * `__proto__` / `constructor.prototype` keys (Fastify's secure-json-parse, answered 400), and text
 * no datastore can store: U+0000 and unpaired UTF-16 surrogates in body strings, object keys, query
 * values and path parameters (PostgreSQL rejects both in text and jsonb, which would otherwise
 * surface as a 500 deep inside a handler), JSON numbers beyond the double range (`1e309` parses
 * to Infinity, which JSON.stringify then stores as null), and numbers a double does not carry
 * exactly (`9007199254740993` parses to ...992, `1.00000000000000000001` to 1: the value stored or
 * compared is not the value sent; exact-number.ts). Each refusal is a 400 naming the field.
 *
 * TRUST_PROXY: which peers may set X-Forwarded-For. Only explicit addresses or CIDRs (the Nginx or
 * ingress address range): a hop count or "true" would trust whatever a client writes in the header.
 * No entry wider than the edge proxy's range (IPv4 /16, IPv6 /48: catalog/addresses.ts, the bound
 * the stack config applies to trustedProxies and dockerSubnet), so a service started by hand or by
 * another deployer cannot trust a whole /8 either (session 42), nor a public IPv4 range (session 50:
 * catalog/addresses.ts nonProxyIPv4, the stack config's rule too), nor a global IPv6 one without the
 * opt-in TRUST_PROXY_GLOBAL_IPV6 (session 51: catalog/addresses.ts ipv6ProxyScope), nor a prefix length
 * written with leading zeros, /016 (session 63: catalog/addresses.ts zeroPaddedPrefix), nor one with
 * address bits past its prefix, 10.0.0.1/16, nor a range listed twice (session 63: hostBitsNetwork,
 * repeatedProxyRange; the stack config's rules for trustedProxies too).
 */
import { isIP } from "node:net";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { hostBitsNetwork, ipv6ProxyScope, isIPv4MappedIPv6, nonProxyIPv4, PROXY_IPV4_RANGES, PROXY_IPV6_RANGES, repeatedProxyRange, TRUSTED_PROXY_MIN_PREFIX, widerThanEdgeProxy, zeroPaddedPrefix } from "../catalog";
import { HttpError } from "./errors";
import { jsonTextFacts, pathsAt, type JsonTextFacts } from "./json-text";
import { bodyTextIssue } from "./body-text";

declare module "fastify" {
  interface FastifyContextConfig {
    /**
     * The route takes JSON numbers a double does not carry exactly (beyondDouble: integers beyond
     * Number.MAX_SAFE_INTEGER, literals of more than 17 significant digits, non-zero ones read as 0) as the nearest double (a
     * protocol whose int64 may come as a JSON number, as OTLP/JSON's nanosecond times do), instead of a 400.
     */
    takesInexactNumbers?: true;
  }
}

export const DEFAULT_JSON_MAX_DEPTH = 64;

/**
 * proxy-addr's named ranges. `loopback` (127.0.0.0/8, ::1) is accepted besides literal addresses and
 * CIDRs: only this host (the container itself) sends from it. `linklocal` (169.254.0.0/16,
 * fe80::/10) and `uniquelocal` (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7) are wider than
 * the edge proxy's bound and refused like the CIDRs they stand for.
 */
const NAMED_RANGES = ["loopback", "linklocal", "uniquelocal"];
const WIDE_NAMED_RANGES = ["linklocal", "uniquelocal"];

/**
 * TRUST_PROXY as Fastify's `trustProxy`: a list of addresses / CIDRs / named ranges. Throws an Error
 * whose message says what is wrong with the value (the kit turns it into a ConfigError naming the key).
 */
export function parseTrustProxy(v: string | undefined, globalIPv6 = false): string[] | undefined {
  if (v === undefined || v.trim() === "") return undefined;
  const items = v.split(",").map((s) => s.trim()).filter(Boolean);
  const bad: string[] = [];
  const zeroPadded: string[] = [];
  const mapped: string[] = [];
  const wide: string[] = [];
  const foreign: string[] = [];
  const global: string[] = [];
  const noUnicast: string[] = [];
  /** The entries that are an address or CIDR, not a name proxy-addr knows (loopback, ...). */
  const ranges: string[] = [];
  const hostBits: string[] = [];
  for (const item of items) {
    if (NAMED_RANGES.includes(item)) {
      if (WIDE_NAMED_RANGES.includes(item)) wide.push(item);
      continue;
    }
    ranges.push(item);
    const [addr, bits, extra] = item.split("/");
    const family = isIP(addr);
    const maxBits = family === 4 ? 32 : 128;
    const bitsOk = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= maxBits);
    if (family === 0 || extra !== undefined || !bitsOk) bad.push(item);
    else if (zeroPaddedPrefix(item) !== undefined) zeroPadded.push(item);
    else if (isIPv4MappedIPv6(addr)) mapped.push(item);
    else if (widerThanEdgeProxy(family === 4 ? 4 : 6, bits === undefined ? maxBits : Number(bits))) wide.push(item);
    else if (family === 4 && nonProxyIPv4(addr) !== undefined) foreign.push(item);
    else if (family === 6 && ipv6ProxyScope(addr) === "none") noUnicast.push(item);
    else if (family === 6 && ipv6ProxyScope(addr) === "global" && !globalIPv6) global.push(item);
    else if (hostBitsNetwork(item) !== undefined) hostBits.push(item);
  }
  if (/^\d+$/.test(v.trim()) || v.trim() === "true")
    throw new Error(`must list the proxy's addresses or CIDRs (e.g. 10.0.0.5 or 172.18.0.0/16), not a hop count or "true": those trust any X-Forwarded-For a client sends (got "${v}")`);
  if (bad.length > 0) throw new Error(`has invalid entries ${bad.map((b) => `"${b}"`).join(", ")} (expected IPv4/IPv6 addresses, CIDRs or loopback)`);
  // proxy-addr reads /016 as /16, a reader taking a leading 0 for octal as /14: catalog/addresses.ts zeroPaddedPrefix.
  if (zeroPadded.length > 0)
    throw new Error(`has entries whose prefix length has a leading zero ${zeroPadded.map((z) => `"${z}" (write /${zeroPaddedPrefix(z)})`).join(", ")}: some readers take a leading 0 for octal`);
  // proxy-addr applies an IPv4-mapped range to IPv4 clients with 96 bits less: ::ffff:0.0.0.0/96 is 0.0.0.0/0.
  if (mapped.length > 0)
    throw new Error(`has IPv4-mapped IPv6 entries ${mapped.map((m) => `"${m}"`).join(", ")}, which apply to IPv4 clients (::ffff:0.0.0.0/96 trusts every one): write them as IPv4`);
  if (wide.length > 0)
    throw new Error(
      `has entries wider than the edge proxy (at most /${TRUSTED_PROXY_MIN_PREFIX.v4} for IPv4, /${TRUSTED_PROXY_MIN_PREFIX.v6} for IPv6) ${wide.map((w) => `"${w}"`).join(", ")}: every host in them could set X-Forwarded-For and pick the address the rate limit and login lockout count; list the proxy's addresses or its pod range`,
    );
  if (foreign.length > 0)
    throw new Error(
      `has entries outside the edge proxy's ranges (${PROXY_IPV4_RANGES}) ${foreign.map((f) => `"${f}" (${nonProxyIPv4(f.split("/")[0])})`).join(", ")}: every host there could set X-Forwarded-For and pick the address the rate limit and login lockout count`,
    );
  if (noUnicast.length > 0) throw new Error(`has IPv6 entries of no unicast range (multicast, unspecified, reserved) ${noUnicast.map((n) => `"${n}"`).join(", ")}: no edge proxy sends from them`);
  if (global.length > 0)
    throw new Error(
      `has global IPv6 entries ${global.map((g) => `"${g}"`).join(", ")}: an edge proxy sends from ${PROXY_IPV6_RANGES} unless the pod network is global (EKS IPv6, dual-stack clusters); if it is, set TRUST_PROXY_GLOBAL_IPV6=true (the stack's trustGlobalIPv6Proxies), else every host of the range could set X-Forwarded-For and pick the address the rate limit and login lockout count`,
    );
  // Checked last, on entries taken so far: each is an address or CIDR the URL parser reads (a zone id was refused above).
  const repeated = repeatedProxyRange(ranges);
  if (repeated !== undefined)
    throw new Error(
      repeated[0] === repeated[1]
        ? `lists "${repeated[0]}" twice: give each range once`
        : `lists "${repeated[0]}" and "${repeated[1]}", the same range to proxy-addr (it matches the address bits up to the prefix length, in any IPv6 spelling): give each range once`,
    );
  const repeatedName = items.find((item, i) => NAMED_RANGES.includes(item) && items.indexOf(item) !== i);
  if (repeatedName !== undefined) throw new Error(`lists "${repeatedName}" twice: give each range once`);
  // proxy-addr masks the host bits away: 10.0.0.1/16 trusts all of 10.0.0.0/16, where a host (10.0.0.1) was meant as often.
  if (hostBits.length > 0)
    throw new Error(`has entries with address bits set past the prefix, which are ignored ${hostBits.map((h) => `"${h}" (write ${hostBitsNetwork(h)}, or ${h.split("/")[0]} alone for the one host)`).join(", ")}`);
  return items;
}

export { jsonDepthExceeds, jsonTextFacts, type JsonTextFacts } from "./json-text";

// eslint-disable-next-line no-control-regex
const unstorable = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

// eslint-disable-next-line no-control-regex
const unstorableSource = /\\u|[\u0000\ud800-\udfff]/;

/** False when a JSON text can hold no unstorable string once parsed: no \u escape, no NUL, no surrogate. */
export const mayHoldUnstorableText = (jsonText: string) => unstorableSource.test(jsonText);

/** True when a string holds U+0000 or an unpaired surrogate. */
export const isUnstorableText = (s: string) => unstorable.test(s);

const unstorableAll = new RegExp(unstorable.source, "g");
/** `s` with each U+0000 and unpaired surrogate (a pair cut by a slice) replaced by U+FFFD: text a jsonb value stores. */
export const storableText = (s: string) => s.replace(unstorableAll, "\ufffd");

/** The path ("a.b.0") of the first string or key holding unstorable text, or undefined. */
export function findUnstorableText(value: unknown, path: string[] = []): string[] | undefined {
  if (typeof value === "string") return isUnstorableText(value) ? path : undefined;
  if (value === null || typeof value !== "object") return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = findUnstorableText(value[i], [...path, String(i)]);
      if (p) return p;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value)) {
    if (isUnstorableText(k)) return [...path, k.replace(unstorable, "?")];
    const p = findUnstorableText(v, [...path, k]);
    if (p) return p;
  }
  return undefined;
}

/** The path of the first number `test` is true of, or undefined. */
export function findNumber(value: unknown, test: (n: number) => boolean, path: string[] = []): string[] | undefined {
  if (typeof value === "number") return test(value) ? path : undefined;
  if (value === null || typeof value !== "object") return undefined;
  const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  for (const [k, v] of entries) {
    const p = findNumber(v, test, [...path, k]);
    if (p) return p;
  }
  return undefined;
}

/**
 * The paths (["bars", "3", "0"]) of every number literal of a JSON text its double does not carry
 * exactly (beyondDouble), in order, found in one scan (pathsAt): for JSON read outside a request
 * (Kafka messages, whose bars are refused one by one).
 */
export function inexactNumberPaths(text: string): string[][] {
  const offsets = jsonTextFacts(text, Infinity).inexactOffsets;
  return offsets ? pathsAt(text, offsets) : [];
}

/** The path of the first number that is not finite (a JSON literal beyond the double range), or undefined. */
export const findNonFiniteNumber = (value: unknown): string[] | undefined => findNumber(value, (n) => !Number.isFinite(n));

/**
 * The 400 for the first number of a parsed body that is beyond the double range (`mayOverflow`), or
 * a literal its double does not carry exactly (`inexactNumbers`, unless the route takes them).
 */
function numberIssue(value: unknown, facts: JsonTextFacts, takesInexactNumbers: boolean): HttpError | undefined {
  const huge = facts.mayOverflow ? findNonFiniteNumber(value) : undefined;
  // Named where the literal is written (a field of the same value elsewhere was named before).
  const inexact = huge || takesInexactNumbers ? undefined : facts.inexactPath;
  const path = huge ?? inexact;
  if (!path) return undefined;
  const field = path.join(".");
  const what = huge
    ? "a number beyond the range of a double"
    : `a number a JSON number does not carry exactly (an integer beyond ±${Number.MAX_SAFE_INTEGER}, more than 17 significant digits, or a non-zero number below the smallest double, read as 0): send it as a string`;
  return new HttpError(400, "VALIDATION_ERROR", `Invalid body: ${field ? `${field} ` : ""}is ${what}`, field || undefined);
}

const unstorableError = (where: string, path: string[]) => {
  const field = path.join(".");
  return new HttpError(400, "VALIDATION_ERROR", `Invalid ${where}: ${field ? `${field} ` : ""}contains a NUL character or an unpaired surrogate`, field || undefined);
};

/** Throws the 400 when `value` (a body, query or params object) holds unstorable text. */
export function assertStorableText(where: "body" | "querystring" | "params", value: unknown): void {
  const path = findUnstorableText(value);
  if (path) throw unstorableError(where, path);
}

const PROTOTYPE_KEY = "Invalid body: a __proto__ or constructor.prototype key is not taken";
const parsesPlainly = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

/**
 * The JSON body parser every service uses: depth check, then Fastify's own parser (prototype
 * poisoning answered 400), then the storable-text and number checks.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function installJsonGuards(app: FastifyInstance<any, any, any, any, any>, maxDepth: number): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (req, body, done) => {
    // UTF-8 only, decoded strictly (./body-text.ts): a byte that is not UTF-8 was a U+FFFD stored.
    const bytes = typeof body === "string" ? Buffer.from(body) : body;
    const notText = bodyTextIssue(req.headers["content-type"], bytes);
    if (notText) return done(notText, undefined);
    const text = bytes.toString("utf8");
    const facts = jsonTextFacts(text, maxDepth);
    if (facts.tooDeep) {
      done(new HttpError(400, "VALIDATION_ERROR", `Invalid body: JSON nested deeper than ${maxDepth} levels`), undefined);
      return;
    }
    parse(req, text, (err: Error | null, value?: unknown) => {
      // The parser's message is about the client's own text (JSON syntax, a __proto__ key): answered as it is.
      // Fastify says "not valid JSON" of a __proto__ key too: told apart by a plain parse (on refusal only).
      if (err) return done(new HttpError(400, "BAD_REQUEST", parsesPlainly(text) ? PROTOTYPE_KEY : err.message, "body"), undefined);
      // Parsed strings and keys can only hold U+0000 or a surrogate the text holds (raw, or as a
      // \u escape): a body without either needs no walk (a 5,000-bar post walked cost ~4 µs a bar).
      const path = mayHoldUnstorableText(text) ? findUnstorableText(value) : undefined;
      if (path) return done(unstorableError("body", path), undefined);
      const issue = numberIssue(value, facts, req.routeOptions.config.takesInexactNumbers === true);
      done(issue ?? null, issue ? undefined : value);
    });
  });
  // Callback-style: it runs on every request, and an async hook costs a promise and a microtask turn.
  app.addHook("preValidation", (request: FastifyRequest, _reply: unknown, done: (err?: Error) => void) => {
    const issue = unstorableRequestIssue(request.query, request.params);
    if (issue) return done(issue);
    done();
  });
}

/**
 * The 400 of the preValidation hook above for a request's parsed query and path parameters holding
 * unstorable text, or undefined: also the gateway's fast lane's, which hands such a request over.
 */
export function unstorableRequestIssue(query: unknown, params: unknown): HttpError | undefined {
  const inQuery = query && typeof query === "object" ? findUnstorableText(query) : undefined;
  if (inQuery) return unstorableError("querystring", inQuery);
  const inParams = params && typeof params === "object" ? findUnstorableText(params) : undefined;
  return inParams ? unstorableError("params", inParams) : undefined;
}
