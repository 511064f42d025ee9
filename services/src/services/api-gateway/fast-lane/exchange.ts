/**
 * One request the fast lane took (./serve.ts decided it), from its forwarding to its answer: the
 * upstream's (sent once more past a closing replica's 503, ../upstreams.ts closingResendBudget), 502 or
 * 504 in the Fastify path's shape, with its access line, metrics and usage event; or nothing, when the
 * client goes away first. A client past its share of the connections to the service is answered the
 * Fastify path's 429 TOO_MANY_IN_FLIGHT, nothing sent (../upstream-shares.ts: one count with the Fastify path's).
 */
import { isClosingAnswer, type HttpError, type Identity } from "../../../kit";
import type { Hit } from "../leased-counter";
import { restartReason } from "../proxy";
import { upstreamInvalidText, upstreamRestartingText, upstreamUnavailableText } from "../upstream-texts";
import { CLOSING_RESEND_WAIT_MS, closingResendBudget, type UpstreamFailure } from "../upstreams";
import { answerHeadersOf, errorBodyOf, headersOf, streamedHead, wholeAnswer, type AnswerHead } from "./answer";
import { answerCompleted } from "./completed";
import { brokenOnThrow } from "./faults";
import type { LaneConnection, LaneRequest } from "./connections";
import type { LaneDeps } from "./deps";
import { LaneStream } from "./stream";
import type { Sent } from "./upstream-pool";
import type { Exchange, PooledAnswer, StreamSink } from "./upstream-exchange";

/**
 * One request the lane took, from its forwarding to its answer, whatever happens: the upstream's,
 * 502 or 504, in the Fastify path's shape, with its access line, metrics and usage event. One
 * object with methods, not a closure each (about ten a request: allocations, and under tsx each
 * named closure costs a defineProperty: the profile showed them).
 */
export class LaneExchange implements Exchange {
  /** Answered or given up (a streamed answer: its head sent; the rest is ./stream.ts's). */
  private settled = false;
  /** It holds a place among its client's requests to the service (start), until giveBackPlace: answered, given up, or a streamed answer's end. */
  private placeHeld = false;
  private timer: NodeJS.Timeout | undefined;
  private sent: Sent | undefined;
  /**
   * The gateway is draining: the answer says `connection: close` and the connection ends after it. Read again as the
   * answer is made (answerHead), never before: a request begun before the drain and answered during it closes its
   * connection too, so the client moves to another replica before this one stops listening.
   */
  private draining = false;
  readonly head_only: boolean;
  private base: URL | undefined;
  /** Date.now() when the whole-request budget ends (../upstreams.ts closingResendBudget reads it). */
  private deadline = 0;
  /**
   * The upstream's own 503 SHUTTING_DOWN while the request is sent once more (../upstreams.ts
   * sendPastClosing's rule): forwarded when the second try gets no answer.
   */
  private closing: PooledAnswer | undefined;
  /** The second try's time is the request's own (its end is the whole-request budget's, not the upstream's timeout). */
  private resendToDeadline = false;
  /** The first try's time (the upstream's timeout within what is left; a streamed answer's silence too: ./upstream-exchange.ts), and whether it ends before the request's budget. */
  bodyTimeoutMs = 0;
  private upstreamFirst = false;

  constructor(
    private readonly d: LaneDeps,
    private readonly req: LaneRequest,
    private readonly conn: LaneConnection,
    readonly head: Buffer,
    readonly service: string,
    readonly requestId: string,
    private readonly identity: Identity | undefined,
    private readonly rate: Hit,
    /** Whose share of the pool it takes: the user, or the client's address without one (as the Fastify path's). */
    private readonly client: string,
  ) {
    this.head_only = req.method === "HEAD";
  }

  start(base: URL): void {
    const d = this.d;
    // Past the client's share of the connections to the service (both paths' requests): the Fastify path's 429, nothing sent.
    if (!d.shares.enter(this.service, this.client)) return this.refused();
    this.placeHeld = true;
    // What is left of the whole-request budget (from the read: ./serve.ts) and the upstream's
    // (PROXY_TIMEOUT_MS, within it), as on the Fastify path: the shorter one answers (the request's own
    // when they are equal: its timer is armed first there).
    this.deadline = this.req.deadline ?? Date.now() + d.requestTimeoutMs;
    const left = Math.max(1, this.deadline - Date.now());
    this.bodyTimeoutMs = Math.min(d.proxyTimeoutMs, left);
    this.upstreamFirst = d.proxyTimeoutMs < left;
    this.timer = setTimeout(timedOut, this.bodyTimeoutMs, this);
    this.base = base;
    this.conn.exchange = this;
    this.sent = d.pool.send(base, this);
  }

  /**
   * The upstream answered its own 503 SHUTTING_DOWN to a GET or HEAD with time left: sent once more
   * CLOSING_RESEND_WAIT_MS later (its connection closed with that answer: a new one), as the Fastify
   * path's sendPastClosing does, with `left` ms for the second try.
   */
  private resend(answer: PooledAnswer, left: number): void {
    clearTimeout(this.timer);
    this.sent = undefined;
    this.closing = answer;
    this.timer = setTimeout(resendNow, CLOSING_RESEND_WAIT_MS, this, left);
  }

  resendNow(left: number): void {
    if (this.settled) return;
    const d = this.d;
    d.log.info({ requestId: this.requestId, upstream: this.service }, "upstream shutting down: sent once more");
    // The first try's time, bounded by what is left of the request's (sendPastClosing: min(timeoutMs, left)).
    this.resendToDeadline = left <= this.bodyTimeoutMs;
    this.timer = setTimeout(timedOut, Math.min(this.bodyTimeoutMs, left), this);
    this.sent = d.pool.send(this.base!, this);
  }

  private answerHead(status: number): AnswerHead {
    const { d, rate } = this;
    if (!this.draining) this.draining = d.draining();
    return {
      status,
      requestId: this.requestId,
      security: d.security,
      rateLimit: { limit: d.rateMax, remaining: Math.max(0, d.rateMax - rate.current), reset: Math.ceil(rate.ttl / 1000) },
      close: !this.req.keepAlive || this.draining,
      draining: this.draining,
      keepAliveTimeoutMs: d.server.keepAliveTimeout,
    };
  }

  /** The access line, the histogram and the usage event of an answer sent (./completed.ts). */
  completed(status: number, drainReason?: string): void {
    answerCompleted(this.d, this.req, this.requestId, this.identity, status, drainReason);
  }

  finish(): void {
    this.conn.finish(this.req.keepAlive && !this.draining);
  }

  /** Gives up the upstream's answer (its connection closed: it cannot be reused). */
  abandonUpstream(): void {
    this.sent?.abandon();
  }

  private answerError(status: 429 | 502 | 503 | 504, code: string, message: string, drainReason?: string, extra?: Record<string, string>): void {
    this.conn.write(wholeAnswer(this.answerHead(status), undefined, errorBodyOf(this.requestId, code, message), false, extra));
    this.completed(status, drainReason);
    this.finish();
  }

  private upstreamFailed(failure: UpstreamFailure, restarting: boolean, message: string): void {
    this.d.upstreamTotal.inc({ upstream: this.service, status_code: failure === "timeout" ? "504" : "502" });
    this.d.log.warn({ upstream: this.service, failure, restarting, err: { message } }, "upstream request failed");
  }

  private refused(): void {
    const e = this.d.shares.refusal(this.service, this.client);
    this.settled = true;
    this.answerError(429, e.code, e.message, undefined, e.headers);
  }

  /**
   * Its place among the client's requests to the service given back, whichever way it ends first (answered,
   * timed out, its client gone, a streamed answer's end, failure or stall); once, whoever calls (until
   * session 59 five callers each gave it back under its own guard: one missed or doubled skewed the share).
   */
  giveBackPlace(): void {
    if (!this.placeHeld) return;
    this.placeHeld = false;
    this.d.shares.leave(this.service, this.client);
  }

  /** The gateway closed while it waited for a connection, nothing sent: the Fastify path's answer to it (kit errors.ts shuttingDown), a drain answer. */
  notSent(e: HttpError): void {
    if (!this.settle()) return;
    this.answerError(503, e.code, e.message, `shutting down: ${e.message}`, e.headers);
  }

  /** Ended by a fault of the lane's own (./upstream-pool.ts broken, the timers below): logged, nothing answered, its client's connection closed. */
  broken(err: unknown): void {
    // Settled already when its answer is streaming: the stream keeps the connection's listener, and the close below
    // tells it (clientGone), its timer and drain listener going with it; its place is given back here either way.
    this.settle();
    this.giveBackPlace();
    this.sent?.abandon();
    this.d.log.error({ err, requestId: this.requestId, upstream: this.service }, "fast lane failed on a request it took; its connection closed");
    this.conn.destroy();
  }

  /** The lane's timer (see start): 504, the upstream's or the request's. */
  timedOut(): void {
    if (!this.settle()) return;
    this.sent?.abandon();
    const d = this.d;
    const closing = this.closing;
    if (closing) {
      // The second try unanswered in its time: as sendPastClosing, the first answer (counted as the
      // 503 it is), unless the request's own budget ran out first (the Fastify path's 504 GATEWAY_TIMEOUT).
      if (!this.resendToDeadline) return this.forward(closing);
      d.upstreamTotal.inc({ upstream: this.service, status_code: String(closing.statusCode) });
      d.log.warn({ requestId: this.requestId, url: d.pathOf(this.req.url), timeoutMs: d.requestTimeoutMs }, "request timed out at the gateway");
      return this.answerError(504, "GATEWAY_TIMEOUT", `No answer within ${d.requestTimeoutMs} ms`);
    }
    this.upstreamFailed("timeout", false, "Headers Timeout Error");
    if (this.upstreamFirst) return this.answerError(504, "UPSTREAM_TIMEOUT", upstreamUnavailableText(this.service));
    d.log.warn({ requestId: this.requestId, url: d.pathOf(this.req.url), timeoutMs: d.requestTimeoutMs }, "request timed out at the gateway");
    this.answerError(504, "GATEWAY_TIMEOUT", `No answer within ${d.requestTimeoutMs} ms`);
  }

  /**
   * The client went away before its answer (its connection closed or ended: ./connections.ts): the
   * upstream's is not waited for, nothing is answered or logged (as on the Fastify path, whose access
   * line comes with an answer's finish). Mid-stream, the upstream's connection is closed: it was left
   * paused on the client's full socket, whose drain never came, and its pool slot held (until session 54).
   */
  clientGone(): void {
    if (!this.settle()) return; // (a streamed answer's client gone: ./stream.ts)
    this.sent?.abandon();
  }

  /** Settled; its place in the client's share given back, but by a streamed answer, which holds its connection until it ends. */
  private settle(streams = false): boolean {
    if (this.settled) return false;
    this.settled = true;
    if (!streams) this.giveBackPlace();
    clearTimeout(this.timer);
    this.conn.exchange = undefined;
    return true;
  }

  onAnswer(a: PooledAnswer): void {
    if (this.settled) return;
    if (!this.closing && a.statusCode === 503) {
      const left = closingResendBudget(this.req.method, { statusCode: a.statusCode, headers: headersOf(a.rawHeaders), body: a.body }, this.deadline);
      if (left !== undefined) return this.resend(a, left);
    }
    this.settle();
    this.forward(a);
  }

  /** The upstream's whole answer to the client (settled). */
  private forward(a: PooledAnswer): void {
    const service = this.service;
    this.d.upstreamAnswers.add(service, a.statusCode);
    if (a.statusCode < 200 || a.statusCode > 599) return this.answerError(502, "UPSTREAM_UNAVAILABLE", upstreamInvalidText(service));
    // A service closing behind the gateway (a deploy's drain): forwarded, logged as a drain answer.
    const drain = isClosingAnswer(a.statusCode, a.body) ? `${service} shutting down (its answer forwarded)` : undefined;
    this.conn.write(wholeAnswer(this.answerHead(a.statusCode), answerHeadersOf(a.rawHeaders, this.head_only), a.body, this.head_only));
    this.completed(a.statusCode, drain);
    this.finish();
  }

  onStream(a: PooledAnswer, more: StreamSink): void {
    if (!this.settle(true)) return;
    this.d.upstreamTotal.inc({ upstream: this.service, status_code: String(a.statusCode) });
    const { head, chunked } = streamedHead(this.answerHead(a.statusCode), a.rawHeaders);
    new LaneStream(this, this.d, this.conn, a.statusCode, chunked, more).begin(head, a.body);
  }

  onFailure(err: Error, failure: UpstreamFailure, _received: boolean, restarting: boolean): void {
    if (!this.settle()) return;
    // The second try failed: the first answer, as sendPastClosing (which logs and counts no failure then).
    if (this.closing) return this.forward(this.closing);
    this.upstreamFailed(failure, restarting, err.message);
    // A deploy, not an outage (../upstreams.ts): the 502 with retry-after, its access line a drain answer at warn.
    if (restarting) return this.answerError(502, "UPSTREAM_UNAVAILABLE", upstreamRestartingText(this.service), restartReason(this.service, failure), RETRY_AFTER);
    this.answerError(502, "UPSTREAM_UNAVAILABLE", upstreamUnavailableText(this.service));
  }
}

// A timer's throw would end the process: the exchange ends instead (./faults.ts).
const timedOut = (x: LaneExchange) => brokenOnThrow(x, () => x.timedOut());
const resendNow = (x: LaneExchange, left: number) => brokenOnThrow(x, () => x.resendNow(left));
const RETRY_AFTER = { "retry-after": "1" };
