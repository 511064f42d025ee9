/**
 * The bytes of the fast lane's answers, header for header what the Fastify path sends for the same
 * request (tests/services/gateway-fast-lane.test.ts compares both): the request id, the close of a
 * draining service, the security headers, the rate-limit plugin's three headers, the upstream's
 * answer headers (../upstreams.ts answerHeaders), the content type and length Fastify adds for a
 * Buffer, then what node:http adds (headLines).
 */
import { STATUS_CODES, type IncomingHttpHeaders } from "node:http";
import { answerHeaderDropped, answerHeaders } from "../upstream-headers";

/** Request upstream: the head undici writes for a GET or HEAD (host, connection, then the headers); undefined when a value cannot be sent as is. */
export function requestHead(method: string, pathAndQuery: string, host: string, headers: Record<string, string | string[]>): Buffer | undefined {
  let head = `${method} ${pathAndQuery} HTTP/1.1\r\nhost: ${host}\r\nconnection: keep-alive\r\n`;
  for (const name in headers) {
    const v = headers[name];
    // Only what undici sends unchanged (no control character but tab, no leading or trailing space):
    // anything else goes the Fastify way, which answers it as it always has. (A single value is not
    // wrapped in an array to be walked: an array a header, a request, before session 57.)
    if (!Array.isArray(v)) {
      if (!sendable.test(v)) return undefined;
      head += `${name}: ${v}\r\n`;
      continue;
    }
    for (const one of v) {
      if (!sendable.test(one)) return undefined;
      head += `${name}: ${one}\r\n`;
    }
  }
  return Buffer.from(`${head}\r\n`, "latin1");
}

const sendable = /^(?:[^\s\x00-\x1f\x7f](?:[^\x00-\x08\x0a-\x1f\x7f]*[^\s\x00-\x1f\x7f])?)?$/;

/** An answer's headers as undici hands them over (lower-case names; a repeated header as an array). */
export function headersOf(raw: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const had = out[name];
    if (had === undefined) out[name] = raw[i + 1];
    else if (Array.isArray(had)) had.push(raw[i + 1]);
    else out[name] = [had, raw[i + 1]];
  }
  return out;
}

// Read once: an imported binding compiles to a getter read on every use, here once per header of every answer.
const dropped = answerHeaderDropped;

/**
 * The upstream answer's headers to send on, straight from its raw lines: `answerHeaders(headersOf(raw),
 * streamed)` in one pass, one object fewer a request (a header named `__proto__`, which sets that object's
 * prototype, goes the two-step way, its outcome unchanged).
 */
export function answerHeadersOf(raw: readonly string[], streamed: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name === "__proto__") return answerHeaders(headersOf(raw), streamed);
    if (dropped(name, streamed)) continue;
    const had = out[name];
    if (had === undefined) out[name] = raw[i + 1];
    else if (Array.isArray(had)) had.push(raw[i + 1]);
    else out[name] = [had, raw[i + 1]];
  }
  return out;
}

export interface AnswerHead {
  status: number;
  requestId: string;
  /** The gateway's security headers (installAnswerHeaders). */
  security: Readonly<Record<string, string>>;
  /** x-ratelimit-limit, -remaining, -reset as @fastify/rate-limit writes them. */
  rateLimit: { limit: number; remaining: number; reset: number };
  /** Close after this answer (the client asked, or the service is draining). */
  close: boolean;
  /** The service is draining: the kit's own lower-case `connection: close` comes second, as Fastify sends it (kit probes.ts). */
  draining: boolean;
  keepAliveTimeoutMs: number;
}

let dateSecond = 0;
let dateText = "";
/** node:http's Date header, written when the answer has none (its text changes once a second). */
function utcDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/**
 * The head, its headers in Fastify's order: those set before the handler (the kit's, the rate
 * limit's), then the upstream's, one of the same name taking the earlier one's place and value (as
 * reply.headers does: an upstream's x-request-id, the gateway's own id it was sent), then what
 * node:http adds when the answer has none (Date, Connection, Keep-Alive).
 */
export function headLines(a: AnswerHead, own: Record<string, string | string[]>): string {
  const names = Object.keys(own);
  // A name of digits sorts first among an object's keys (reply.headers' order too): that way, below.
  if (names.length > 0 && isDigit(names[0].charCodeAt(0))) return headLinesInObjectOrder(a, own);
  // The same lines as headLinesInObjectOrder, written in its order with no object of them all (a
  // request's two objects and their copies: session 57's profile): the gateway's own, each unless the
  // upstream gave that name (then its value, in that place), then the upstream's other names in order.
  const security = a.security;
  let head = `HTTP/1.1 ${a.status} ${STATUS_TEXT[a.status] ?? "unknown"}\r\n${lineOf("x-request-id", Object.hasOwn(own, "x-request-id") ? own["x-request-id"] : a.requestId)}`;
  if (a.draining) head += lineOf("connection", Object.hasOwn(own, "connection") ? own.connection : "close");
  // The security headers' lines as one block made once, unless the upstream's answer names one of them (then
  // line by line, its value in that place): a name looked up in both objects and a line made for each, on
  // every answer, before.
  let overridden = false;
  for (const name of names) if (Object.hasOwn(security, name)) overridden = true;
  if (!overridden) head += securityBlock(security);
  else for (const name in security) head += lineOf(name, Object.hasOwn(own, name) ? own[name] : security[name]);
  head += lineOf("x-ratelimit-limit", Object.hasOwn(own, "x-ratelimit-limit") ? own["x-ratelimit-limit"] : String(a.rateLimit.limit));
  head += lineOf("x-ratelimit-remaining", Object.hasOwn(own, "x-ratelimit-remaining") ? own["x-ratelimit-remaining"] : String(a.rateLimit.remaining));
  head += lineOf("x-ratelimit-reset", Object.hasOwn(own, "x-ratelimit-reset") ? own["x-ratelimit-reset"] : String(a.rateLimit.reset));
  for (const name of names) {
    const placed = name === "x-request-id" || RATE_LIMIT_NAMES.has(name) || (a.draining && name === "connection") || (overridden && Object.hasOwn(security, name));
    if (!placed) head += lineOf(name, own[name]);
  }
  if (!Object.hasOwn(own, "date")) head += `Date: ${utcDate()}\r\n`;
  if (a.draining || Object.hasOwn(own, "connection")) return head;
  return head + (a.close ? "Connection: close\r\n" : `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(a.keepAliveTimeoutMs / 1000)}\r\n`);
}

let blockSecurity: Readonly<Record<string, string>> | undefined;
let blockLines = "";
/** The lines of `security` (the gateway's one set: made again only if another comes). */
function securityBlock(security: Readonly<Record<string, string>>): string {
  if (security !== blockSecurity) {
    let lines = "";
    for (const name in security) lines += lineOf(name, security[name]);
    [blockSecurity, blockLines] = [security, lines];
  }
  return blockLines;
}

const RATE_LIMIT_NAMES: ReadonlySet<string> = new Set(["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]);
const STATUS_TEXT = STATUS_CODES;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const lineOf = (name: string, v: string | string[] | undefined): string => {
  if (!Array.isArray(v)) return `${name}: ${v}\r\n`;
  let lines = "";
  for (const one of v) lines += `${name}: ${one}\r\n`;
  return lines;
};

/** headLines by an object of the lines (Object.assign keeps a name's first place), for an answer with a name of digits. */
export function headLinesInObjectOrder(a: AnswerHead, own: Record<string, string | string[]>): string {
  const h: Record<string, string | string[]> = { "x-request-id": a.requestId };
  if (a.draining) h.connection = "close";
  Object.assign(h, a.security);
  h["x-ratelimit-limit"] = String(a.rateLimit.limit);
  h["x-ratelimit-remaining"] = String(a.rateLimit.remaining);
  h["x-ratelimit-reset"] = String(a.rateLimit.reset);
  Object.assign(h, own);
  let head = `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? "unknown"}\r\n`;
  for (const name in h) {
    const v = h[name];
    if (Array.isArray(v)) for (const one of v) head += `${name}: ${one}\r\n`;
    else head += `${name}: ${v}\r\n`;
  }
  if (h.date === undefined) head += `Date: ${utcDate()}\r\n`;
  if (h.connection !== undefined) return head;
  return head + (a.close ? "Connection: close\r\n" : `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(a.keepAliveTimeoutMs / 1000)}\r\n`);
}

/**
 * A whole answer: the upstream's (status, its headers to send on as answerHeadersOf(raw, head_only) gives
 * them, body; a HEAD's without its body but with the upstream's Content-Length) or the lane's own JSON
 * error (`upstream` undefined).
 */
export function wholeAnswer(a: AnswerHead, upstream: Record<string, string | string[]> | undefined, body: Buffer, head_only: boolean, extra?: Readonly<Record<string, string>>): Buffer {
  // (`extra`: the lane's own error's headers, as the handler sets them before sending: retry-after.)
  const own: Record<string, string | string[]> = upstream ?? { ...extra };
  // As Fastify's reply.send: a HEAD's answer keeps the upstream's headers alone; a 204 carries no
  // content type or length; any other Buffer gets a content type when it has none, and its length.
  const noBody = head_only || a.status === 204 || a.status === 304;
  if (a.status === 204) {
    delete own["content-type"];
    delete own["content-length"];
  } else if (!head_only) {
    if (own["content-type"] === undefined) own["content-type"] = upstream ? "application/octet-stream" : "application/json; charset=utf-8";
    own["content-length"] = String(body.length);
  }
  const head = `${headLines(a, own)}\r\n`;
  if (noBody || body.length === 0) return Buffer.from(head, "latin1");
  // Head and body written into one buffer (not the head's own buffer, then both copied by Buffer.concat): latin1
  // is a byte a character, so the head's length is its size.
  const whole = Buffer.allocUnsafe(head.length + body.length);
  whole.write(head, 0, "latin1");
  body.copy(whole, head.length);
  return whole;
}

/** The head of a streamed answer: the upstream's Content-Length when it gave one, else chunked (`chunked` true: frame each write). */
export function streamedHead(a: AnswerHead, upstreamRaw: readonly string[]): { head: Buffer; chunked: boolean } {
  const own = answerHeadersOf(upstreamRaw, true); // (Fastify adds no content type to a stream)
  const chunked = own["content-length"] === undefined;
  const lines = headLines(a, own);
  return { head: Buffer.from(`${lines}${chunked ? "Transfer-Encoding: chunked\r\n" : ""}\r\n`, "latin1"), chunked };
}

/** The platform's error body (kit errorBody's shape). */
export const errorBodyOf = (requestId: string, code: string, message: string): Buffer => Buffer.from(JSON.stringify({ error: { code, message, requestId } }));

/** A streamed answer's chunk in chunked framing (its length in hex, the chunk, CRLF). */
export const chunkOf = (b: Buffer): Buffer => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`, "latin1"), b, CRLF]);
const CRLF = Buffer.from("\r\n");
