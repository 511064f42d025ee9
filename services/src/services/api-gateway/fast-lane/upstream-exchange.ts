/**
 * What the fast lane's upstream pool (./upstream-pool.ts) is given to send and where it answers: its
 * side of one request (./exchange.ts LaneExchange implements it).
 */
import type { HttpError } from "../../../kit";
import type { UpstreamFailure } from "../upstreams";

export interface PooledAnswer {
  statusCode: number;
  /** Raw header lines, [name, value, ...] as received. */
  rawHeaders: string[];
  body: Buffer;
}

export interface Exchange {
  /** The whole request head (and nothing else: the lane forwards GET and HEAD only). */
  head: Buffer;
  /** HEAD: the answer has no body whatever its headers say. */
  head_only: boolean;
  /**
   * How long a streamed answer may go without a byte from the upstream while the client takes what it is
   * sent (not while the upstream is paused for it): undici's bodyTimeout on the Fastify path, the upstream's timeout.
   */
  readonly bodyTimeoutMs: number;
  /** The whole answer, when it is at most BUFFER_LIMIT_BYTES. */
  onAnswer(a: PooledAnswer): void;
  /** The answer is larger: its head and first part; `more` gets each next chunk, then null at its end (or an Error). */
  onStream(a: PooledAnswer, more: StreamSink): void;
  /** No answer: why ("timeout" never here: the lane's own timer), whether any of it came, and whether the upstream is taken for restarting (refused or closed after an answer within RESTART_WINDOW_MS). */
  onFailure(err: Error, failure: UpstreamFailure, received: boolean, restarting: boolean): void;
  /** A throw out of the lane's own handling of it (a fault, not the upstream's): ended, its client's connection closed. */
  broken(err: unknown): void;
  /** Never sent: the gateway closed while it waited for a connection (../upstream-errors.ts notForwarded): answered `e`. */
  notSent(e: HttpError): void;
}

export interface StreamSink {
  /** A body chunk (copied); answers false when the client is full (the upstream is paused until `resume`). */
  write(chunk: Buffer | null, err?: Error): boolean;
  resume?: () => void;
}
