/**
 * What a service answers once it is closing (Fastify's close: after SIGTERM and SHUTDOWN_DRAIN_MS,
 * ./service.ts runService). Fastify's own answer (`return503OnClosing`) is written on the socket
 * before any hook: `{"error":"Service Unavailable",...}` with neither the platform's error shape, a
 * request id, Retry-After nor the security headers installAnswerHeaders puts on every answer. It is
 * turned off (./app.ts) and this hook, the first of every request's, answers instead: 503
 * SHUTTING_DOWN in the platform's shape (./errors.ts errorBody, its id in `x-request-id` too), with
 * `retry-after: 1` (another replica answers) and the answer headers (./raw-answers.ts). Fastify still
 * closes the connection after it. Requests routed before the close began are served to their end.
 *
 * A drain answer (this one, /ready's 503 while draining, the gateway's forwarding of a service's) is
 * counted as the 5xx it is (an operator sees a deploy's drain), but its access line (./probes.ts) is
 * not an error: it is written at the level markDrainAnswer gives, with a `reason` field.
 */
import type { Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import { errorBody, shuttingDown } from "./errors";
import { markDrainAnswer } from "./drain-answers";
import { answerHeadersOf } from "./raw-answers";

// The same 503 a service's own cut waits answer (./errors.ts shuttingDown), as a body written here.
const NOT_STARTED = shuttingDown("the request was not started");
export const SHUTTING_DOWN = NOT_STARTED.code;

export { drainAnswerOf, markDrainAnswer } from "./drain-answers";

/** Whether an upstream's answer body is a closing service's (above): 503 SHUTTING_DOWN in the platform's shape. */
export function isClosingAnswer(statusCode: number, body: unknown): boolean {
  if (statusCode !== 503 || !Buffer.isBuffer(body) || body.length > 1024 || !body.includes(SHUTTING_DOWN)) return false;
  try {
    return (JSON.parse(body.toString()) as { error?: { code?: unknown } } | null)?.error?.code === SHUTTING_DOWN;
  } catch {
    return false;
  }
}

/**
 * Connections whose first request the service read before its close began but handed to Fastify
 * after (the gateway's fast lane, once a cache it warmed for it: api-gateway/fast-lane/handed-over.ts):
 * that request is served as one routed before the close, not answered "not started".
 */
const begunBeforeClose = new WeakSet<Socket>();
export const markBegunBeforeClose = (socket: Socket): void => void begunBeforeClose.add(socket);

/** Each app's switch (installClosingAnswers): from then on every answer ends its connection. */
const connectionEnders = new WeakMap<object, () => void>();

/**
 * From now on every answer of `app` ends its connection, those of requests begun before too (a drain:
 * ./service.ts). The drain's onRequest check (./probes.ts) sees only the requests that arrive after it: an
 * answer to one begun before kept its connection alive, and the client sent its next request into the close.
 */
export const endConnectionsAfterAnswers = (app: object): void => connectionEnders.get(app)?.();

/** Installs the closing answer on `app`: call before any other onRequest hook. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function installClosingAnswers(app: FastifyInstance<any, any, any, any, any>): void {
  let closing = false;
  let endConnections = false;
  connectionEnders.set(app, () => void (endConnections = true));
  // preClose runs as Fastify's close begins (routes closed, before the server stops listening).
  app.addHook("preClose", (done) => {
    closing = endConnections = true;
    done();
  });
  app.addHook("onRequest", (request, reply, done) => {
    const begun = begunBeforeClose.delete(request.raw.socket); // (the connection's first request only)
    if (!closing || begun) return done();
    // The hooks after this one (installAnswerHeaders') do not run for an answer given here.
    markDrainAnswer(reply, "shutting down: the request arrived once the service's close began");
    reply
      .headers(answerHeadersOf(app.server))
      .header("x-request-id", String(request.id))
      .header("retry-after", "1")
      .header("connection", "close")
      .status(503)
      .send(errorBody(request, NOT_STARTED.code, NOT_STARTED.message));
  });
  // Every answer given once the close began ends its connection. Fastify closes the connections idle
  // when its preClose hooks end; an answer finished after that (a wait the close cut, answered in the
  // same moment) left its connection kept alive, and the close waited for it up to keepAliveTimeout
  // (72 s): tests/ai/strategy-replicas.test.ts's shutdown case hung so, now and then, under load.
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (endConnections && !reply.raw.headersSent) reply.header("connection", "close");
    done(null, payload);
  });
}
