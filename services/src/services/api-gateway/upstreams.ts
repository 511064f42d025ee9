/**
 * Sends a request to an upstream service over its kept-alive connections (./service-pool.ts: undici
 * Clients, within the service's connection budget shared with the fast lane, ./upstream-budget.ts) and
 * hands back its answer.
 *
 * Not @fastify/reply-from: measured (README "Gateway speed"), its per-request URL building, header
 * copies and stream piping cost the gateway more CPU than everything else on the proxy path. The
 * platform's answers are small JSON documents, so an answer is collected and sent as one Buffer
 * (one write, with Content-Length); one larger than BUFFER_LIMIT_BYTES is streamed as it arrives,
 * with backpressure, and the upstream request is aborted if the client goes away.
 *
 * An upstream restarting (a deploy: its close, then its new process starting) refuses connections
 * or closes the kept-alive ones, and the requests sent meanwhile got a 502 logged at error like any
 * failure: a deploy read as an outage. What a platform engineer wants, decided in session 52:
 * - Sent again once, at once, on a new connection, when nothing of it can have been acted on: a
 *   refused connection (kit REFUSED_CONNECTION_CODES: nothing was sent; any method), or a GET or HEAD whose
 *   connection was closed or reset before any answer (idempotent: a kept-alive connection the
 *   upstream closed as it was reused). Behind a Kubernetes Service a new connection goes to a
 *   replica picked anew, most likely one that is up; a POST whose connection closed after it was
 *   sent may have been carried out, so it is never sent twice.
 * - Still no answer: the 502 stays (the caller retries, `retry-after: 1`), but an upstream that
 *   answered within RESTART_WINDOW_MS (any status) and now refuses or drops connections is taken for
 *   restarting (UpstreamError `restarting`): its access line is a drain answer, warn with a reason,
 *   not an error. One that did not answer for that long, a timeout (504), and any other failure stay
 *   errors: an outage, not a deploy. gateway_upstream_responses_total counts every 502 either way.
 * - Its own 503 SHUTTING_DOWN (kit closing-answers.ts) is forwarded as a drain answer (./proxy.ts),
 *   unless the request is a GET or HEAD with time left: then it is sent once more (sendPastClosing).
 */
import type { IncomingHttpHeaders } from "node:http";
import { Readable } from "node:stream";
import type { Client, Dispatcher } from "undici";
import { HttpError, LOST_CONNECTION_CODES, REFUSED_CONNECTION_CODES } from "../../kit";
import { ServicePool } from "./service-pool";
import { ConnectionBudgets } from "./upstream-budget";
import { ClientGoneError, ClientStalledError, UpstreamError, type UpstreamFailure } from "./upstream-errors";

export { ClientGoneError, ClientStalledError, STALLED_CLIENT_LOG, UpstreamError, type UpstreamFailure } from "./upstream-errors";
export { CLOSING_RESEND_MIN_LEFT_MS, CLOSING_RESEND_WAIT_MS, closingResendBudget, sendPastClosing } from "./closing-resend";

export const BUFFER_LIMIT_BYTES = 1 << 20;

/**
 * How long after an upstream's last answer a refused or dropped connection is taken for a restart
 * rather than an outage: a replica's drain and close (the stacks' SHUTDOWN_DRAIN_MS 3 s and
 * SHUTDOWN_TIMEOUT_MS 10 s) and its successor's start-up and readiness (well under 30 s) fit in a
 * minute; an upstream refusing for longer is down, and its 502s are errors again.
 */
export const RESTART_WINDOW_MS = 60_000;
const TIMEOUTS = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"]);

export interface UpstreamRequest {
  method: string;
  /** Path and query string. */
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
  /** Bounds the wait for the answer's headers and each gap in its body. */
  timeoutMs: number;
  /**
   * The client's response (the Fastify path's: ./proxy.ts): its close before the upstream's answer ended (its
   * client went away, or the request's own 504 was sent) ends the upstream request at once, its connection
   * and its client's place in the share freed (until session 59 held until the upstream answered or timed out);
   * one still waiting for a connection leaves the queue at once (until session 60 it stayed in undici's until it
   * reached a connection, and closed that connection: live requests waited behind the dead ones).
   */
  answering?: ClosingResponse;
}

/** What UpstreamRequest.answering reads of a node:http ServerResponse. */
export interface ClosingResponse {
  readonly closed: boolean;
  once(event: "close", listener: () => void): unknown;
}

export interface UpstreamAnswer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The whole body, or a stream of it when larger than BUFFER_LIMIT_BYTES. */
  body: Buffer | Readable;
}

/**
 * When each upstream (its host:port) last answered, any status: one record for the gateway's two ways
 * to it, Upstreams and the fast lane's pool, so that a connection closed right after an answer that
 * went either way is "restarting" (until session 54 each kept its own and the lane said "unavailable").
 * It carries each upstream's connection budget too (./upstream-budget.ts), the one object both ways are given.
 */
export class UpstreamAnswerTimes {
  private readonly at = new Map<string, number>();

  constructor(readonly budgets: ConnectionBudgets) {}

  answered(host: string): void {
    this.at.set(host, performance.now());
  }

  /** Whether `host` answered within RESTART_WINDOW_MS. */
  recent(host: string): boolean {
    const at = this.at.get(host);
    return at !== undefined && performance.now() - at < RESTART_WINDOW_MS;
  }
}

export class Upstreams {
  private readonly pools = new Map<string, ServicePool>();
  /** Each base's host:port, the key of `answers`. */
  private readonly hosts = new Map<string, string>();

  constructor(
    /**
     * connections: each service's budget, both ways' (./upstream-budget.ts); sendTimeoutMs: how long a streamed
     * answer waits for a client that takes none of it (CLIENT_SEND_TIMEOUT_MS; none: no bound); closing: aborted
     * when the gateway's requests still waiting for a connection are answered 503 SHUTTING_DOWN, both ways'
     * (./upstream-budget.ts closeQueues; ./index.ts: a grace into the gateway's close).
     */
    private readonly o: { connections: number; keepAliveTimeoutMs: number; sendTimeoutMs?: number; closing?: AbortSignal },
    readonly answers = new UpstreamAnswerTimes(new ConnectionBudgets(o.connections)),
  ) {
    const closeQueues = () => answers.budgets.closeQueues();
    if (o.closing?.aborted) closeQueues();
    else o.closing?.addEventListener("abort", closeQueues, { once: true });
  }

  /** Resolves with the answer; rejects with UpstreamError when none arrived (with ./upstream-errors.ts notForwarded's HttpError when the gateway closed before it was sent). */
  send(base: string, req: UpstreamRequest): Promise<UpstreamAnswer> {
    let pool = this.pools.get(base);
    if (!pool) {
      const key = new URL(base).host;
      pool = new ServicePool(base, this.answers.budgets.of(key), this.o.keepAliveTimeoutMs);
      this.pools.set(base, pool);
      this.hosts.set(base, key);
    }
    const host = this.hosts.get(base)!;
    return new Promise((resolve, reject) =>
      dispatch(
        pool, req, 0, this.o.sendTimeoutMs,
        (answer) => {
          this.answers.answered(host);
          resolve(answer);
        },
        (e) => reject(e instanceof UpstreamError && (e.failure === "refused" || e.failure === "closed") && this.answers.recent(host) ? new UpstreamError(e.failure, e.cause as Error, true) : e),
      ),
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }
}

function dispatch(pool: ServicePool, req: UpstreamRequest, attempt: number, sendTimeoutMs: number | undefined, resolve: (a: UpstreamAnswer) => void, reject: (e: Error) => void): void {
  let statusCode = 0;
  let headers: IncomingHttpHeaders = {};
  let chunks: Buffer[] = [];
  let size = 0;
  let stream: Readable | undefined;
  let ended = false;
  /** The client's response closed first (req.answering): the request aborted as soon as undici gives it a connection. */
  let gone = false;
  let controller: Dispatcher.DispatchController | undefined;
  /** Drops the request from its pool's queue while it waits for a connection (undefined once it has one). */
  let dequeue: (() => void) | undefined;
  /** The connection it was given, until given back (`ended`). */
  let client: Client | undefined;
  /** Armed while a streamed answer's buffer is full and its client takes none of it (sendTimeoutMs). */
  let stall: NodeJS.Timeout | undefined;
  const answering = req.answering;
  if (answering) {
    if (answering.closed) return reject(new ClientGoneError());
    answering.once("close", () => {
      if (ended) return;
      gone = true;
      // Rejected now (a request still waiting for a connection gives its client's place back at once), then
      // dropped from the queue, or aborted on its connection.
      reject(new ClientGoneError());
      if (dequeue) dequeue();
      else if (stream) stream.destroy();
      else controller?.abort(new ClientGoneError());
    });
  }
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (gone) c.abort(new ClientGoneError());
    },
    onResponseStart(_c, status, h) {
      statusCode = status;
      headers = h;
    },
    onResponseData(controller, chunk) {
      if (stream) {
        if (!stream.push(chunk)) {
          controller.pause();
          // A client that takes none of it holds the connection, and its place in the share, for good without this bound.
          if (sendTimeoutMs !== undefined && stall === undefined) stall = setTimeout(() => stream!.destroy(new ClientStalledError(`the client took none of the answer in ${sendTimeoutMs} ms`)), sendTimeoutMs);
        }
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
      if (size <= BUFFER_LIMIT_BYTES) return;
      stream = new Readable({
        read: () => {
          clearTimeout(stall);
          stall = undefined;
          controller.resume();
        },
        destroy: (err, cb) => {
          clearTimeout(stall);
          if (!ended) controller.abort(err ?? new Error("client went away"));
          cb(err);
        },
      });
      for (const c of chunks) stream.push(c);
      chunks = [];
      resolve({ statusCode, headers, body: stream });
    },
    onResponseEnd() {
      ended = true;
      freed();
      if (stream) stream.push(null);
      else resolve({ statusCode, headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size) });
    },
    onResponseError(_c, err) {
      ended = true;
      freed();
      if (stream) return void stream.destroy(err);
      if (gone) return; // (rejected already)
      const code = (err as { code?: string }).code ?? "";
      const failure: UpstreamFailure = TIMEOUTS.has(code) || /timeout/i.test(err.name) ? "timeout" : REFUSED_CONNECTION_CODES.has(code) ? "refused" : LOST_CONNECTION_CODES.has(code) ? "closed" : "failed";
      // Sent again once when nothing of it can have been acted on (see above): refused, or an idempotent request's connection closed.
      const idempotent = req.method === "GET" || req.method === "HEAD";
      if (statusCode === 0 && attempt === 0 && (failure === "refused" || (failure === "closed" && idempotent))) return dispatch(pool, req, 1, sendTimeoutMs, resolve, reject);
      reject(new UpstreamError(failure, err));
    },
  };
  /** Its connection back to the pool once undici is done with it (a microtask: undici counts the request ended after this handler returns). */
  const freed = () => {
    const c = client;
    client = undefined;
    if (c) queueMicrotask(() => pool.release(c));
  };
  const start = (c: Client) => {
    dequeue = undefined;
    client = c;
    try {
      c.dispatch({ path: req.path, method: req.method as Dispatcher.HttpMethod, headers: req.headers, body: req.body, headersTimeout: req.timeoutMs, bodyTimeout: req.timeoutMs }, handler);
    } catch (e) {
      freed();
      // undici refuses a header it cannot send (what reaches here passed Node's parser and the
      // gateway's checks): the client's request, 400. Anything else is the gateway's own fault.
      reject(/header/i.test((e as Error).message) ? new HttpError(400, "BAD_REQUEST", "A request header cannot be forwarded as sent") : (e as Error));
    }
  };
  dequeue = pool.acquire(start, reject);
}
