/**
 * The fast lane's decision and answer for one complete GET or HEAD (./connections.ts). Everything is
 * decided first, with no side effect: the body framing, the kit's framing and Host checks
 * (framingIssue), a routing decision the Fastify path already made (TargetCache.peek), credentials
 * the Authenticator decides from its caches alone and accepts (no error), the proxy's authorisation
 * (../proxy.ts authorise: 401, an API key's scopes), the IPv6 site cap, the per-IP cap and the
 * per-user (or per-address) rate limit each countable from its live lease and not exceeded, and
 * forwarded headers sendable as they are. Any "no" declines (the Fastify path answers from scratch);
 * a cold cache is a Cold (warmed, then decided again: ./connections.ts), not a "no".
 * Only then are the three counters taken, and the request forwarded: from there on the lane answers
 * whatever happens, the upstream's answer, 502 or 504, in the Fastify path's shape, with its access
 * line, metrics and usage event.
 */
import { addressBucketOf, isClosingAnswer, siteBucketOf } from "../../../kit";
import { clientRequestIdOf } from "../../../kit/app";
import { requestIdOf } from "../../../kit/raw-answers";
import { framingIssue } from "../../../kit/request-framing";
import { GatewayLimits } from "../limits";
import type { Identity } from "../../../kit";
import type { Hit } from "../leased-counter";
import { authorise, restartReason, upstreamHeaders, upstreamInvalidText, upstreamRestartingText, upstreamUnavailableText } from "../proxy";
import type { UpstreamFailure } from "../upstreams";
import { errorBodyOf, headersOf, requestHead, streamedHead, wholeAnswer, type AnswerHead } from "./answer";
import type { LaneConnection, LaneRequest } from "./connections";
import type { LaneDeps } from "./deps";
import type { Exchange, PooledAnswer, Sent, StreamSink } from "./upstream-pool";

/** Why the lane leaves a request to Fastify (gateway_fast_lane_total's `reason`). */
export type Declined = "closing" | "framing" | "route" | "credentials" | "limit" | "headers";

/**
 * A request the lane declines only because a cache is cold: `warm` fills it with the Fastify path's
 * own code (the proxy's routing decision, Authenticator.authenticate, the rate-limit lease), counting
 * nothing, and answers whether deciding again can now go further (false: a 400/404 route, refused
 * credentials, Dragonfly unreachable, or the cache still cold; Fastify answers those from scratch).
 */
export interface Cold {
  reason: "route" | "credentials" | "limit";
  warm: () => Promise<boolean>;
}

/** At most this long for a warm-up (then Fastify's, which asks again under its own budget). */
const within = (ms: number, p: Promise<boolean>): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms, false);
    p.then(
      (ok) => {
        clearTimeout(timer);
        resolve(ok);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });

/** The rate-limit key's lease when it can be had (else a plain "limit": spent, Fastify's 429). */
function coldLimit(d: LaneDeps, key: string, max: number): Cold | "limit" {
  if (!d.limits.leasable(key)) return "limit";
  return { reason: "limit", warm: () => within(d.requestTimeoutMs, d.limits.lease(key, max).then(() => d.limits.canHit(key))) };
}

/**
 * true when the lane takes `req` (it answers it and calls conn.finish), a Cold to warm and decide
 * again, else why not.
 */
export function serveRequest(d: LaneDeps, req: LaneRequest, conn: LaneConnection): true | Declined | Cold {
  if (d.closing()) return "closing";
  const { msg, method } = req;
  const h = msg.headers;
  if (h["transfer-encoding"] !== undefined || (h["content-length"] !== undefined && h["content-length"] !== "0") || h.expect !== undefined || h.upgrade !== undefined) return "framing";
  if (framingIssue(msg, d.maxHeaders)) return "framing";
  const target = d.targets.peek(req.url);
  if (!target)
    return {
      reason: "route",
      // (A URL too long for the cache stays cold: Fastify's.)
      warm: async () => {
        try {
          d.targetOf(req.url);
        } catch {
          return false; // its 400/404
        }
        return d.targets.peek(req.url) !== undefined;
      },
    };
  const ip = d.clientAddress(msg);
  const bucket = addressBucketOf(ip);
  const site = siteBucketOf(ip);
  const siteKey = site ? GatewayLimits.siteKey(site) : undefined;
  if (siteKey && !d.limits.canHit(siteKey)) return coldLimit(d, siteKey, d.limits.o.siteMax);
  req.requestId ??= requestIdOf(d.server, msg);
  const requestId = req.requestId;
  const auth = d.authenticator.cached(h);
  if (!auth) {
    // An API key is verified by Fastify's path alone: a wrong one is counted as a failure per
    // verification (limits.ts admitKeyAttempt), and one here and one there would count it twice.
    if (h["x-api-key"] !== undefined) return "credentials";
    return {
      reason: "credentials",
      warm: () => within(d.requestTimeoutMs, d.authenticator.authenticate(h, bucket, requestId, d.requestTimeoutMs).then((a) => !a.error && d.authenticator.cached(h) !== undefined)),
    };
  }
  if (auth.error) return "credentials";
  let identity;
  try {
    identity = authorise(target, auth, method);
  } catch {
    return "credentials";
  }
  const ipKey = identity ? GatewayLimits.ipKey(bucket) : undefined;
  if (ipKey && !d.limits.canHit(ipKey)) return coldLimit(d, ipKey, d.limits.o.ipMax);
  const rateKey = `gw-rl:${identity ? `user:${identity.userId}` : `ip:${bucket}`}`;
  if (!d.limits.canHit(rateKey)) return coldLimit(d, rateKey, d.rateMax);
  const base = d.bases.get(target.service.name)!;
  const head = requestHead(method, `${target.path}${target.search}`, base.host, upstreamHeaders(h, requestId, clientRequestIdOf(msg), ip, identity));
  if (!head) return "headers";

  // Decided: the tokens are taken (each from its live lease, synchronously), then the request is the lane's.
  if (siteKey) d.limits.hit(siteKey, d.limits.o.siteMax);
  if (ipKey) d.limits.hit(ipKey, d.limits.o.ipMax);
  const rate = d.limits.hit(rateKey, d.rateMax)!;
  new LaneExchange(d, req, conn, head, target.service.name, requestId, identity, rate).start(base);
  return true;
}

/**
 * One request the lane took, from its forwarding to its answer, whatever happens: the upstream's,
 * 502 or 504, in the Fastify path's shape, with its access line, metrics and usage event. One
 * object with methods, not a closure each (about ten a request: allocations, and under tsx each
 * named closure costs a defineProperty: the profile showed them).
 */
class LaneExchange implements Exchange {
  private settled = false;
  private timer: NodeJS.Timeout | undefined;
  private sent: Sent | undefined;
  private readonly draining: boolean;
  readonly head_only: boolean;
  /** A streamed answer: its chunks framed (no Content-Length), the client socket's drain listener. */
  private chunked = false;
  private onDrain: (() => void) | undefined;

  constructor(
    private readonly d: LaneDeps,
    private readonly req: LaneRequest,
    private readonly conn: LaneConnection,
    readonly head: Buffer,
    private readonly service: string,
    private readonly requestId: string,
    private readonly identity: Identity | undefined,
    private readonly rate: Hit,
  ) {
    this.draining = d.draining();
    this.head_only = req.method === "HEAD";
  }

  start(base: URL): void {
    const d = this.d;
    // The whole-request budget and the upstream's (PROXY_TIMEOUT_MS, within it), as on the Fastify path:
    // the shorter one answers (the request's own when they are equal: its timer is armed first there).
    this.timer = setTimeout(timedOut, Math.min(d.proxyTimeoutMs, d.requestTimeoutMs), this);
    this.conn.exchange = this;
    this.sent = d.pool.send(base, this);
  }

  private answerHead(status: number): AnswerHead {
    const { d, rate } = this;
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

  /** The access line, the histogram and the usage event of an answer sent. */
  private completed(status: number, drainReason?: string): void {
    const { d, req } = this;
    const ms = performance.now() - req.startedAt;
    d.metrics.httpDuration.observe({ method: req.method, route: "/api/*", status_code: String(status) }, ms / 1000);
    const level = drainReason ? "warn" : status >= 500 ? "error" : "info";
    if (d.accessLog.isLevelEnabled(level)) {
      const clientRequestId = clientRequestIdOf(req.msg);
      d.accessLog[level]({ requestId: this.requestId, ...(clientRequestId ? { clientRequestId } : {}), method: req.method, url: d.pathOf(req.url), statusCode: status, ms: Math.round(ms * 10) / 10, ...(drainReason ? { reason: drainReason } : {}) }, "request completed");
    }
    d.usage?.recordRequest(d.routes, req.url, req.method, status, ms, this.identity);
  }

  private finish(): void {
    this.conn.finish(this.req.keepAlive && !this.draining);
  }

  private answerError(status: 502 | 504, code: string, message: string, drainReason?: string, extra?: Record<string, string>): void {
    this.conn.write(wholeAnswer(this.answerHead(status), undefined, errorBodyOf(this.requestId, code, message), false, extra));
    this.completed(status, drainReason);
    this.finish();
  }

  private upstreamFailed(failure: UpstreamFailure, restarting: boolean, message: string): void {
    this.d.upstreamTotal.inc({ upstream: this.service, status_code: failure === "timeout" ? "504" : "502" });
    this.d.log.warn({ upstream: this.service, failure, restarting, err: { message } }, "upstream request failed");
  }

  /** The lane's timer (see start): 504, the upstream's or the request's. */
  timedOut(): void {
    if (this.settled) return;
    this.settled = true;
    this.conn.exchange = undefined;
    this.sent?.abandon();
    const d = this.d;
    this.upstreamFailed("timeout", false, "Headers Timeout Error");
    if (d.proxyTimeoutMs < d.requestTimeoutMs) return this.answerError(504, "UPSTREAM_TIMEOUT", upstreamUnavailableText(this.service));
    d.log.warn({ requestId: this.requestId, url: d.pathOf(this.req.url), timeoutMs: d.requestTimeoutMs }, "request timed out at the gateway");
    this.answerError(504, "GATEWAY_TIMEOUT", `No answer within ${d.requestTimeoutMs} ms`);
  }

  /** The client went away before its answer (its connection closed): the upstream's is not waited for. */
  clientGone(): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.conn.exchange = undefined;
    this.sent?.abandon();
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    clearTimeout(this.timer);
    this.conn.exchange = undefined;
    return true;
  }

  onAnswer(a: PooledAnswer): void {
    if (!this.settle()) return;
    const service = this.service;
    this.d.upstreamTotal.inc({ upstream: service, status_code: String(a.statusCode) });
    if (a.statusCode < 200 || a.statusCode > 599) return this.answerError(502, "UPSTREAM_UNAVAILABLE", upstreamInvalidText(service));
    // A service closing behind the gateway (a deploy's drain): forwarded, logged as a drain answer.
    const drain = isClosingAnswer(a.statusCode, a.body) ? `${service} shutting down (its answer forwarded)` : undefined;
    this.conn.write(wholeAnswer(this.answerHead(a.statusCode), headersOf(a.rawHeaders), a.body, this.head_only));
    this.completed(a.statusCode, drain);
    this.finish();
  }

  onStream(a: PooledAnswer, more: StreamSink): void {
    if (!this.settle()) return;
    this.d.upstreamTotal.inc({ upstream: this.service, status_code: String(a.statusCode) });
    const { head: streamHead, chunked } = streamedHead(this.answerHead(a.statusCode), headersOf(a.rawHeaders));
    this.chunked = chunked;
    this.conn.write(streamHead);
    this.conn.write(this.frame(a.body));
    const onDrain = () => more.resume?.();
    this.onDrain = onDrain;
    this.conn.socket.on("drain", onDrain);
    more.write = (chunk, err) => this.streamed(a.statusCode, chunk, err);
  }

  private frame(b: Buffer): Buffer {
    return this.chunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`, "latin1"), b, CRLF]) : b;
  }

  /** A streamed answer's next chunk, its end (null) or its failure. */
  private streamed(status: number, chunk: Buffer | null, err?: Error): boolean {
    const conn = this.conn;
    if (err) {
      conn.socket.removeListener("drain", this.onDrain!);
      this.completed(status);
      conn.destroy(); // the answer cannot be finished: the client sees it cut, as on the Fastify path
      return false;
    }
    if (chunk === null) {
      conn.socket.removeListener("drain", this.onDrain!);
      if (this.chunked) conn.write(LAST_CHUNK);
      this.completed(status);
      this.finish();
      return true;
    }
    return chunk.length === 0 || conn.write(this.frame(chunk));
  }

  onFailure(err: Error, failure: UpstreamFailure, _received: boolean, restarting: boolean): void {
    if (!this.settle()) return;
    this.upstreamFailed(failure, restarting, err.message);
    // A deploy, not an outage (../upstreams.ts): the 502 with retry-after, its access line a drain answer at warn.
    if (restarting) return this.answerError(502, "UPSTREAM_UNAVAILABLE", upstreamRestartingText(this.service), restartReason(this.service, failure), RETRY_AFTER);
    this.answerError(502, "UPSTREAM_UNAVAILABLE", upstreamUnavailableText(this.service));
  }
}

const timedOut = (x: LaneExchange) => x.timedOut();
const RETRY_AFTER = { "retry-after": "1" };
const CRLF = Buffer.from("\r\n");
const LAST_CHUNK = Buffer.from("0\r\n\r\n");
