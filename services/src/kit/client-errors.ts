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
import { STATUS_CODES, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import { rawErrorAnswer } from "./raw-answers";

/** Connections whose request was answered before its body arrived in full. */
const answeredEarly = new WeakSet<Socket>();

/** The status, code, message and field Node's client error `code` is answered with. */
export function clientErrorAnswer(code: string | undefined): { status: number; code: string; message: string; field?: string } {
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") return { status: 408, code: "REQUEST_TIMEOUT", message: "The request did not arrive in full in time" };
  if (code === "HPE_HEADER_OVERFLOW") return { status: 431, code: "HEADERS_TOO_LARGE", message: "The request line and headers are over the size limit", field: "headers" };
  return { status: 400, code: "BAD_REQUEST", message: "Malformed HTTP request (request line, headers or framing)" };
}

/** The raw HTTP/1.1 answer of a client error on `server`: JSON with a new request id, the server's answer headers (./raw-answers.ts), and the connection closed. */
export function clientErrorResponse(code: string | undefined, server: Server): string {
  const a = clientErrorAnswer(code);
  const { headers, body } = rawErrorAnswer(server, undefined, a);
  const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  return `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status]}\r\n${head}\r\n${body}`;
}

/** Fastify's `clientErrorHandler`. */
export function answerClientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset or destroyed connection has nobody to answer.
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  this.log.debug({ code: err.code }, "client error before routing");
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
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
  if (socket.writable && !inFlight?.headersSent && !answeredEarly.has(socket)) socket.write(clientErrorResponse(err.code, this.server));
  socket.destroy(err);
}

/** Remembers connections whose request was answered with its body still arriving (an onResponse hook's work). */
export function installEarlyAnswerTracking(app: FastifyInstance): void {
  app.addHook("onResponse", (request, _reply, done) => {
    if (!request.raw.complete) answeredEarly.add(request.raw.socket);
    done();
  });
}
