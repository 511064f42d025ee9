/**
 * What a request's headers must be before anything reads them, in every service (session 50's
 * hostile hunt, tests/hostile/framing.test.ts):
 * - **Header count.** Node keeps the first 1,000 headers of a request (its `maxHeadersCount`, 2,000
 *   raw entries) and drops the rest without a word. A client sending ~995 headers of a few bytes each
 *   (well inside the 16 KiB header block) had the gateway forward them, its own identity headers
 *   last: the service dropped those, and an API key's call arrived as a user session
 *   (`x-auth-method` lost: GET /api/users/me said `"authMethod":"jwt"`), without its scopes, or
 *   without any identity (401). Now nothing is dropped (`maxHeadersCount` 0: the header block's byte
 *   limit bounds them) and a request with more than `headerCountLimitFor` headers is a 431 naming
 *   `headers`: the entry point takes Apache's default of 100 (LimitRequestFields), a service behind
 *   it twice that, room for what the gateway adds.
 * - **Headers that name one thing, sent twice** (Host, Authorization, X-Api-Key, Content-Type,
 *   Content-Encoding, Idempotency-Key, Stripe-Signature): Node kept the first Host, Authorization and
 *   Content-Type and dropped the others, and joined two X-Api-Keys, Idempotency-Keys or
 *   Stripe-Signatures with ", " (a payment webhook's two signature lines were read as one, each
 *   line's timestamp and signatures in it); a proxy in front may read the other one. A 400 naming
 *   the header.
 * - **Framing Node takes but does not decode**: a Transfer-Encoding other than `chunked` alone
 *   (`gzip, chunked` was read as chunked and its gzip bytes taken as the body), or any on an HTTP/1.0
 *   request (session 64: faultyFraming, its connection closed after), is a 400 naming
 *   `transfer-encoding`; a body with a Content-Encoding (gzip, deflate, br, anything but identity)
 *   is a 415 naming `content-encoding`: bodies are taken uncompressed, so none is ever inflated (no
 *   zip bomb), and a body labelled gzip is never read as plain text.
 * - **A Host that is no `host[:port]`** (RFC 9110 §7.2, RFC 9112 §3.2: a 400), nor an absolute-form
 *   target's authority (since session 64: absoluteTargetIssue, a 400 naming `url`): userinfo
 *   (`user:pw@gw`), two ports, a port past 65535, a space, a path, a character outside RFC 3986's
 *   reg-name (non-ASCII included), an unclosed or non-IPv6 bracket, an empty value (RFC 9110 §4.2.1:
 *   an http URI's host is never empty). Node and Fastify took any of them (session 51,
 *   tests/hostile/session-51.test.ts); a proxy or cache in front reads such a value its own way. A
 *   400 naming `host` (hostIssue).
 * - **What Node answered itself, outside the platform's shape**: an HTTP/1.1 request without Host
 *   (a 400 with no body) is a 400 naming `host`; an Expect other than `100-continue` (a 417 with no
 *   body) is a 417 naming `expect`; and `Expect: 100-continue` with a Content-Length over the body
 *   limit is answered 413 at once, without the `100 Continue` that told the client to send it; within
 *   it, the 100 is written when the body is first read (continueOnRead), never before a refusal. These
 *   answers, written outside Fastify, carry its answers' request id and headers (./raw-answers.ts).
 * - **A body on a GET or HEAD** (a Content-Length above 0, or a chunk): Fastify never reads it, so the
 *   request was answered as if it had none, silently (session 62, tests/hostile/session-62.test.ts);
 *   a 400 naming `body`, like a body sent to another route that takes none (./unread-bodies.ts).
 * - **A version other than HTTP/1.x** (`HTTP/2.0` in a request line, none at all: HTTP/0.9), which
 *   llhttp takes: a 400 naming `version` (session 56), as one it refuses (`HTTP/9.9`) is.
 * - **A JSON body's text**: UTF-8 (or US-ASCII, its subset) only, decoded strictly (./body-text.ts, since
 *   session 64; here before).
 */
import { isIPv6 } from "node:net";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { FastifyInstance } from "fastify";
import { HttpError, routeNotFound } from "./errors";
import { rawErrorAnswer } from "./raw-answers";

/** Most headers a request may carry: the entry point's, and a service's behind it (room for what the gateway adds). */
export const headerCountLimitFor = (entryPoint: boolean): number => (entryPoint ? 100 : 200);

/** Headers that name one thing: sent twice, the request is refused. */
const SINGLE_HEADERS = ["host", "authorization", "x-api-key", "content-type", "content-encoding", "idempotency-key", "stripe-signature"];
const SINGLE_LENGTHS = new Set(SINGLE_HEADERS.map((h) => h.length));

/** The first of SINGLE_HEADERS a request carries twice, or undefined. */
export function repeatedSingleHeader(rawHeaders: readonly string[]): string | undefined {
  let seen: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    if (!SINGLE_LENGTHS.has(name.length)) continue;
    const lower = name.toLowerCase();
    if (!SINGLE_HEADERS.includes(lower)) continue;
    if (seen?.includes(lower)) return lower;
    (seen ??= []).push(lower);
  }
  return undefined;
}

/** RFC 3986's reg-name (unreserved, pct-encoded, sub-delims; an IPv4 address is one) or an IP literal in brackets, then an optional port. */
const HOST = /^(?:([A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+|\[([0-9A-Fa-f:.]+)\])(?::(\d{0,5}))?$/;

/** Whether a Host header's value is no `host[:port]` (RFC 9110 §7.2): see the file's comment. */
export function hostIssue(host: string): boolean {
  // The last answer kept: a service's requests nearly all name one host, and the pattern's exec (a
  // capture per character) was about 1 µs of each gateway request (session 57's profile of its bench).
  if (host === lastHost) return lastHostIssue;
  const m = HOST.exec(host);
  const issue = !m || (m[2] !== undefined && !isIPv6(m[2])) || (m[3] !== undefined && m[3] !== "" && Number(m[3]) > 65_535);
  lastHost = host;
  lastHostIssue = issue;
  return issue;
}
let lastHost: string | undefined;
let lastHostIssue = false;

/** An absolute-form target's scheme and authority (RFC 9112 §3.2.2): what stands in for Host. */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)/i;

export const ABSOLUTE_TARGET_MESSAGE = "A request target that is no path must be http(s)://host[:port]/path, its host[:port] as a Host header's (RFC 9112 section 3.2.2)";

/**
 * Whether a request target is neither a path (origin-form) nor `*` nor an http(s) absolute-form whose
 * authority passes hostIssue. The authority names the host in place of Host (RFC 9112 §3.2.2), and
 * one Host would be refused for (userinfo `http://u:p@gw/...`, a port past 65535, an empty host) was
 * taken (session 64), the last two answered "Malformed URL (bad percent-encoding)" by the router
 * (which refuses them before any hook runs: ./app.ts answers them with ABSOLUTE_TARGET_MESSAGE now),
 * and another scheme (`ftp://gw/...`) a 404 naming the target. (CONNECT's authority-form is answered
 * before: client-errors.ts.)
 */
export function absoluteTargetIssue(target: string | undefined): boolean {
  if (target === undefined || target.charCodeAt(0) === 47 /* "/" */ || target === "*") return false;
  const m = ABSOLUTE_FORM.exec(target);
  return !m || hostIssue(m[1]);
}

/**
 * An HTTP/1.0 request with a Transfer-Encoding (RFC 9112 §6.1: its framing is faulty, the connection
 * closed after the answer). llhttp read its body as chunked and kept the connection (session 64),
 * where a proxy of HTTP/1.0 in front reads no body and the chunks as a request of their own.
 */
const faultyFraming = (req: IncomingMessage): boolean => req.httpVersionMinor === 0 && req.headers["transfer-encoding"] !== undefined;

const hasBody = (req: IncomingMessage): boolean => req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;

/** Why a request's headers are refused (the 4xx), or undefined. */
export function framingIssue(req: IncomingMessage, maxHeaders: number): HttpError | undefined {
  const raw = req.rawHeaders;
  if (raw.length > maxHeaders * 2) return new HttpError(431, "TOO_MANY_HEADERS", `The request carries ${raw.length / 2} headers; at most ${maxHeaders} are taken`, "headers");
  const repeated = repeatedSingleHeader(raw);
  if (repeated) return new HttpError(400, "BAD_REQUEST", `The ${repeated} header is sent more than once`, repeated);
  // HTTP/1.0 and 1.1 only (session 56): llhttp takes a request line of `HTTP/2.0` (the version of its
  // connection preface) and one with no version (HTTP/0.9), which were served as HTTP/1.1, while
  // `HTTP/9.9` was a 400 naming `version`. (HTTP/2's own preface is refused by llhttp: client-errors.ts.)
  if (req.httpVersionMajor !== 1) return new HttpError(400, "BAD_REQUEST", "Only HTTP/1.0 and HTTP/1.1 requests are taken: send HTTP/1.1", "version");
  const h = req.headers;
  if (h.host === undefined && req.httpVersionMinor === 1 && req.httpVersionMajor === 1) return new HttpError(400, "BAD_REQUEST", "An HTTP/1.1 request needs a Host header", "host");
  if (h.host !== undefined && hostIssue(h.host)) return new HttpError(400, "BAD_REQUEST", "The Host header must be a host name or address with an optional port (RFC 9110 section 7.2)", "host");
  if (absoluteTargetIssue(req.url)) return new HttpError(400, "BAD_REQUEST", ABSOLUTE_TARGET_MESSAGE, "url");
  const te = h["transfer-encoding"];
  if (te !== undefined && faultyFraming(req)) return new HttpError(400, "BAD_REQUEST", "An HTTP/1.0 request has no Transfer-Encoding (RFC 9112 section 6.1): send a Content-Length, or HTTP/1.1", "transfer-encoding");
  if (te !== undefined && te.trim().toLowerCase() !== "chunked")
    return new HttpError(400, "BAD_REQUEST", "Transfer-Encoding must be chunked alone (no other transfer coding is taken)", "transfer-encoding");
  const ce = h["content-encoding"];
  if (ce !== undefined && ce.trim().toLowerCase() !== "identity" && ce.trim() !== "" && hasBody(req))
    return new HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "Request bodies are taken uncompressed: send it without a Content-Encoding", "content-encoding");
  // Fastify never reads a GET's or HEAD's body: `GET /api-keys {"limit":1}` was answered as if no body
  // had been sent, where a DELETE's is judged (./unread-bodies.ts). Refused, as RFC 9110 §9.3.1 allows
  // (a chunked one once its first byte arrives: awaitNoBody).
  if (takesNoContent(req) && Number(h["content-length"] ?? 0) > 0) return bodyOnBodyless(req);
  return undefined;
}

/** GET and HEAD: the methods whose body Fastify never reads. */
const takesNoContent = (req: IncomingMessage): boolean => req.method === "GET" || req.method === "HEAD";
const bodyOnBodyless = (req: IncomingMessage) => new HttpError(400, "BAD_REQUEST", `A ${req.method} request takes no body: send none`, "body");

/**
 * A chunked GET or HEAD: passed on once its body ends empty (some clients frame every request so),
 * refused at its first byte. Nothing else reads that body, so reading it here costs nothing.
 */
function awaitNoBody<P extends NodeJS.ReadableStream>(req: IncomingMessage, payload: P, done: (err: Error | null, payload?: P) => void): void {
  let settled = false;
  const settle = (err: Error | null) => {
    if (settled) return;
    settled = true;
    payload.removeListener("data", onData).removeListener("end", onEnd).removeListener("error", settle);
    done(err, payload);
  };
  const onData = () => {
    payload.pause(); // the rest is discarded once the answer is written
    settle(bodyOnBodyless(req));
  };
  const onEnd = () => settle(null);
  payload.on("data", onData).once("end", onEnd).once("error", settle);
}

/** A JSON answer written straight to a response Fastify never saw (checkContinue, checkExpectation), with the headers of the server's other answers (./raw-answers.ts). */
function answerRaw(server: Server, req: IncomingMessage, res: ServerResponse, answer: { status: number; code: string; message: string; field: string }): void {
  const { headers, body } = rawErrorAnswer(server, req, answer);
  res.writeHead(answer.status, headers);
  res.end(body);
}

/** Requests sent with `Expect: 100-continue` whose 100 is not written yet (continueOnRead). */
const awaitingContinue = new WeakSet<IncomingMessage>();

/** Whether the client waits for `100 Continue` before sending the body: a refusal known from the headers is best given now (./request-framing.ts). */
export const awaitsContinue = (req: IncomingMessage): boolean => awaitingContinue.has(req);

/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1) answered when the body is first read (the stream's first
 * `_read`, whoever reads it: a content-type parser, the gateway's), not when the request arrives. Node
 * wrote `100 Continue` at once and the refusal after it: a request refused on its headers alone (more
 * headers than taken, a Host or framing refused, an unknown route) told the client to send its body,
 * then refused it (session 52, tests/hostile/continue-refusals.test.ts). Until the 100 is written the
 * answer closes its connection (the body never read: the client may send it anyway, or not at all); a
 * read once the answer is under way (Node discarding an unread body) writes no 100.
 */
function continueOnRead(req: IncomingMessage, res: ServerResponse): void {
  const keepAlive = res.shouldKeepAlive;
  res.shouldKeepAlive = false;
  awaitingContinue.add(req);
  const read = req._read;
  req._read = function (this: IncomingMessage, size: number) {
    req._read = read;
    awaitingContinue.delete(req);
    if (!res.headersSent) {
      res.shouldKeepAlive = keepAlive;
      res.writeContinue();
    }
    return read.call(this, size);
  };
}

/**
 * Installs the checks: the header count and framing in a preParsing hook (after the entry point's
 * own onRequest hooks, so its answers carry the security headers; before any body is read or
 * forwarded), and the server's Expect handling. `bodyLimit` is the service's; a route declaring a
 * larger one raises the bound `Expect: 100-continue` is judged by.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function installFramingGuards(app: FastifyInstance<any, any, any, any, any>, o: { maxHeaders: number; bodyLimit: number }): void {
  app.server.maxHeadersCount = 0;
  let largestBody = o.bodyLimit;
  app.addHook("onRoute", (route) => {
    if (typeof route.bodyLimit === "number" && route.bodyLimit > largestBody) largestBody = route.bodyLimit;
  });
  app.addHook("preParsing", (request, reply, payload, done) => {
    const issue = framingIssue(request.raw, o.maxHeaders);
    // Node reads its body as chunked, a proxy of HTTP/1.0 may not: nothing after it on the connection is taken.
    if (issue && faultyFraming(request.raw)) reply.raw.shouldKeepAlive = false;
    if (issue) return done(issue);
    // Fastify reads an unknown route's body before its 404: known now, answered without it (no 100 Continue).
    if (request.is404 && awaitingContinue.has(request.raw)) return done(routeNotFound(request));
    if (takesNoContent(request.raw) && request.raw.headers["transfer-encoding"] !== undefined) return awaitNoBody(request.raw, payload, done);
    done(null, payload);
  });
  app.server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    if (Number(req.headers["content-length"] ?? 0) > largestBody) {
      answerRaw(app.server, req, res, { status: 413, code: "PAYLOAD_TOO_LARGE", message: `Request body is too large (at most ${largestBody} bytes)`, field: "body" });
      return;
    }
    continueOnRead(req, res);
    app.server.emit("request", req, res);
  });
  app.server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) =>
    answerRaw(app.server, req, res, { status: 417, code: "EXPECTATION_FAILED", message: "Only Expect: 100-continue is taken", field: "expect" }));
}
