/**
 * How an upstream request of the Fastify path (./upstreams.ts) ends without an answer to forward; the fast
 * lane names its failures the same way (./fast-lane/upstream-failures.ts).
 */
import { shuttingDown, type HttpError } from "../../kit";

/** A streamed answer its client took none of for CLIENT_SEND_TIMEOUT_MS: cut (the stream's error), logged as STALLED_CLIENT_LOG on both paths. */
export class ClientStalledError extends Error {}
export const STALLED_CLIENT_LOG = "client took none of the streamed answer in time: connection closed";

/** An upstream request ended because its client's response closed first (UpstreamRequest.answering): nothing to answer or count. */
export class ClientGoneError extends Error {
  constructor() {
    super("the client's response closed before the upstream's answer");
  }
}

/** Why no answer came: in time, a refused connection, a connection closed or reset before the answer, anything else. */
export type UpstreamFailure = "timeout" | "refused" | "closed" | "failed";

/** The upstream could not be reached or did not answer in time (nothing was received). */
export class UpstreamError extends Error {
  readonly timedOut: boolean;
  constructor(
    readonly failure: UpstreamFailure,
    cause: Error,
    /** Refused or closed by an upstream that answered within RESTART_WINDOW_MS: taken for a restart (./upstreams.ts). */
    readonly restarting = false,
  ) {
    super(cause.message, { cause });
    this.timedOut = failure === "timeout";
  }
}

/**
 * A request still waiting for a connection to its service when the gateway closes (./upstream-budget.ts
 * closeQueues, ./budgeted-pool.ts): nothing of it was sent, so it is answered as the kit answers a request
 * its replica's close did not start: 503 SHUTTING_DOWN with `retry-after: 1` (kit errors.ts shuttingDown),
 * sent again to another replica. Not the 502 UPSTREAM_UNAVAILABLE of an upstream that is restarting or
 * unreachable: the service is up, this gateway is going. Both paths answer it (the lane: ./fast-lane/exchange.ts notSent).
 */
export const notForwarded = (): HttpError => shuttingDown("the request was waiting for a connection to the service and was not sent");
