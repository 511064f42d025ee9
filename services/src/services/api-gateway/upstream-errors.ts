/**
 * How an upstream request of the Fastify path (./upstreams.ts) ends without an answer to forward; the fast
 * lane names its failures the same way (./fast-lane/upstream-failures.ts).
 */

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
