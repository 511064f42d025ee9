/**
 * Which headers pass the gateway either way (./upstreams.ts, ./proxy.ts, ./fast-lane/answer.ts): a request's
 * to its upstream, an answer's to its client. Hop-by-hop ones never do (RFC 9110 7.6.1).
 */
import type { IncomingHttpHeaders } from "node:http";
import { SECURITY_HEADERS } from "./security-headers";

/** Hop-by-hop headers (RFC 9110 7.6.1) and the framing headers undici sets itself. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization", "host", "content-length", "expect", "http2-settings"]);

/**
 * The headers to forward: the client's, less hop-by-hop ones, those the client's Connection header
 * names, and `drop` (credentials, identity, trace context).
 */
export function forwardedHeaders(incoming: IncomingHttpHeaders, drop: ReadonlySet<string>): Record<string, string | string[]> {
  const named = incoming.connection ? incoming.connection.toLowerCase().split(",").map((s) => s.trim()) : NONE_NAMED;
  const out: Record<string, string | string[]> = {};
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined || HOP_BY_HOP.has(name) || drop.has(name) || (named.length > 0 && named.includes(name))) continue;
    out[name] = value;
  }
  return out;
}

const NONE_NAMED: readonly string[] = [];

/**
 * The answer's headers to send on, less hop-by-hop ones (Content-Length kept only for a streamed
 * body) and the gateway's own security headers (./security-headers.ts).
 */
export function answerHeaders(headers: IncomingHttpHeaders, streamed: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || answerHeaderDropped(name, streamed)) continue;
    out[name] = value;
  }
  return out;
}

/** Whether an upstream answer's header `name` (lower case) is not sent on (answerHeaders; the fast lane's answers). */
export function answerHeaderDropped(name: string, streamed: boolean): boolean {
  return (HOP_BY_HOP.has(name) && !(streamed && name === "content-length")) || Object.hasOwn(GATEWAY_ANSWER_HEADERS, name);
}

// Read once: a re-exported binding compiles to a getter (CommonJS, tsx's and tsc's), read on every use: here once per
// header of every answer (the gateway bench's profile, session 57).
const GATEWAY_ANSWER_HEADERS: Readonly<Record<string, string>> = SECURITY_HEADERS;
