/**
 * What Node's HTTP server answers itself, before any route runs: a request it cannot parse (a
 * request line or header it refuses, Content-Length with Transfer-Encoding, two Content-Lengths),
 * headers over its size limit, and a request not received in full within the receive timeout.
 * Fastify's default writes its own error shape there; these answers are in the platform's (a JSON
 * `error` naming the code, and the field where there is one), and say nothing of the parser.
 *
 * One more case is Node's own: a request answered before its body arrived in full (401 before the
 * upload, the gateway's 408) whose body then stalls gets the receive timeout's 408 on the same
 * connection, a second answer to one request. Such connections get no second answer, only closed.
 * And a malformed request pipelined behind one being handled does not take that one's answer.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import { rawErrorAnswer } from "./raw-answers";

/** Connections whose request was answered before its body arrived in full. */
const answeredEarly = new WeakSet<Socket>();

/**
 * The part of the request llhttp refused, by its error code (and, for the CR/LF and strictness codes
 * it also gives inside a chunked body, its reason naming a chunk): a client is told what to mend, as
 * every other 4xx names its field. Session 53 (tests/hostile/session-53.test.ts): a Transfer-Encoding
 * sent twice, a chunk size that is no hex number, CR or obs-fold in a header were a 400 naming nothing.
 */
export function malformedPart(code: string | undefined, reason = ""): string {
  if (/chunk/i.test(reason) || code === "HPE_INVALID_CHUNK_SIZE") return "body";
  switch (code) {
    case "HPE_INVALID_TRANSFER_ENCODING":
      return "transfer-encoding";
    case "HPE_INVALID_CONTENT_LENGTH":
    case "HPE_UNEXPECTED_CONTENT_LENGTH":
      return "content-length";
    case "HPE_INVALID_METHOD":
      return "method";
    case "HPE_INVALID_URL":
      return "url";
    case "HPE_INVALID_VERSION":
    case "HPE_INVALID_CONSTANT":
    // HTTP/2's connection preface (`PRI * HTTP/2.0`, a client speaking HTTP/2 with prior knowledge):
    // llhttp stops on it with this code, which named `headers` until session 56.
    case "HPE_PAUSED_H2_UPGRADE":
      return "version";
    case "HPE_CLOSED_CONNECTION":
      return "connection";
    default:
      // HPE_INVALID_HEADER_TOKEN, HPE_LF_EXPECTED, HPE_CR_EXPECTED, HPE_STRICT and the rest: a header line.
      return "headers";
  }
}

/**
 * The status, code, message and field Node's client error is answered with. `bodyStarted`: the
 * request's headers were taken (a request is under way on the connection), so a receive timeout is
 * its body's, not its headers'.
 */
export function clientErrorAnswer(err: { code?: string; reason?: string }, bodyStarted = false): { status: number; code: string; message: string; field: string } {
  if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") return { status: 408, code: "REQUEST_TIMEOUT", message: "The request did not arrive in full in time", field: bodyStarted ? "body" : "headers" };
  if (err.code === "HPE_HEADER_OVERFLOW") return { status: 431, code: "HEADERS_TOO_LARGE", message: "The request line and headers are over the size limit", field: "headers" };
  if (err.code === "HPE_PAUSED_H2_UPGRADE") return { status: 400, code: "BAD_REQUEST", message: "HTTP/2 is not taken on this port: send HTTP/1.1", field: "version" };
  return { status: 400, code: "BAD_REQUEST", message: "Malformed HTTP request (request line, headers or framing)", field: malformedPart(err.code, err.reason) };
}

/** A raw HTTP/1.1 JSON error answer on `server` (./raw-answers.ts: the request's id, or a new one, and the server's answer headers), its connection closed after it. */
function rawAnswerText(server: Server, req: IncomingMessage | undefined, a: { status: number; code: string; message: string; field?: string }): string {
  const { headers, body } = rawErrorAnswer(server, req, a);
  const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  return `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status]}\r\n${head}\r\n${body}`;
}

/** The raw HTTP/1.1 answer of a client error on `server`: JSON with a new request id, the server's answer headers (./raw-answers.ts), and the connection closed. */
export function clientErrorResponse(err: { code?: string; reason?: string }, server: Server, bodyStarted = false): string {
  return rawAnswerText(server, undefined, clientErrorAnswer(err, bodyStarted));
}

/**
 * CONNECT (RFC 9110 §9.3.6: a tunnel through a proxy) is no request a service or the gateway takes.
 * Node hands it to the server's `connect` listeners and, with none, destroys the connection without
 * a word: a client got no answer at all (session 53). Now a 405 naming `method` in the platform's
 * shape, and the connection closed (its bytes after the head would be the tunnel's).
 */
export function installConnectRefusal(server: Server): void {
  server.on("connect", (req: IncomingMessage, socket: Socket) => {
    socket.on("error", () => undefined);
    // A CONNECT pipelined behind a request still being handled (session 55): the 405 written and the
    // connection ended at once replaced that request's answer, though it may have been carried out
    // (a POST). As for a malformed request pipelined so (answerClientError), that answer goes out,
    // with `Connection: close`, and the connection closes after it; the CONNECT gets none.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
    if (inFlight && !inFlight.writableFinished) {
      if (!inFlight.headersSent) inFlight.shouldKeepAlive = false;
      inFlight.once("close", () => socket.destroy());
      return;
    }
    socket.end(rawAnswerText(server, req, { status: 405, code: "METHOD_NOT_ALLOWED", message: "CONNECT is not taken: this server is no proxy", field: "method" }));
  });
}

/** Fastify's `clientErrorHandler`. */
export function answerClientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset or destroyed connection has nobody to answer.
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  this.log.debug({ code: err.code }, "client error before routing");
  // The answer on the connection, if one is under way: undefined before a first request, null once
  // an answer finished (node:http detaches it), so a malformed request after an answered one on a
  // kept-alive connection reads no `req` of null (session 54: it threw out of the 'clientError'
  // emit, an uncaught exception that ended the process).
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
  if (inFlight && !inFlight.headersSent && inFlight.req.complete) {
    // The error is in a request pipelined after one received whole and still being handled (sent
    // after its `Connection: close`, or malformed): that one may have been forwarded and acted on,
    // so its answer goes out, with `Connection: close`, and the connection closes after it. Answering
    // 400 here (Node's own way) replaced the answer of a request that was carried out.
    inFlight.shouldKeepAlive = false;
    inFlight.once("close", () => socket.destroy());
    return;
  }
  // As Node's own handler: nothing written over an answer already begun on this connection.
  if (socket.writable && !inFlight?.headersSent && !answeredEarly.has(socket)) socket.write(clientErrorResponse(err as NodeJS.ErrnoException & { reason?: string }, this.server, inFlight !== undefined && !inFlight.req.complete));
  socket.destroy(err);
}

/** Remembers connections whose request was answered with its body still arriving (an onResponse hook's work). */
export function installEarlyAnswerTracking(app: FastifyInstance): void {
  app.addHook("onResponse", (request, _reply, done) => {
    if (!request.raw.complete) answeredEarly.add(request.raw.socket);
    done();
  });
}
