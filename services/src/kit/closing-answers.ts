/**
 * What a service answers once it is closing (Fastify's close: after SIGTERM and SHUTDOWN_DRAIN_MS,
 * ./service.ts runService). Fastify's own answer (`return503OnClosing`) is written on the socket
 * before any hook: `{"error":"Service Unavailable",...}` with neither the platform's error shape, a
 * request id, Retry-After nor the security headers installAnswerHeaders puts on every answer. It is
 * turned off (./app.ts) and this hook, the first of every request's, answers instead: 503
 * SHUTTING_DOWN in the platform's shape (./errors.ts errorBody, its id in `x-request-id` too), with
 * `retry-after: 1` (another replica answers) and the answer headers (./raw-answers.ts). Fastify still
 * closes the connection after it. Requests routed before the close began are served to their end.
 */
import type { FastifyInstance } from "fastify";
import { errorBody, shuttingDown } from "./errors";
import { answerHeadersOf } from "./raw-answers";

// The same 503 a service's own cut waits answer (./errors.ts shuttingDown), as a body written here.
const NOT_STARTED = shuttingDown("the request was not started");

/** Installs the closing answer on `app`: call before any other onRequest hook. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function installClosingAnswers(app: FastifyInstance<any, any, any, any, any>): void {
  let closing = false;
  // preClose runs as Fastify's close begins (routes closed, before the server stops listening).
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });
  app.addHook("onRequest", (request, reply, done) => {
    if (!closing) return done();
    // The hooks after this one (installAnswerHeaders') do not run for an answer given here.
    reply
      .headers(answerHeadersOf(app.server))
      .header("x-request-id", String(request.id))
      .header("retry-after", "1")
      .header("connection", "close")
      .status(503)
      .send(errorBody(request, NOT_STARTED.code, NOT_STARTED.message));
  });
}
