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
import { authorise, upstreamHeaders, upstreamUnavailableText } from "../proxy";
import { errorBodyOf, headersOf, requestHead, streamedHead, wholeAnswer, type AnswerHead } from "./answer";
import type { LaneConnection, LaneRequest } from "./connections";
import type { LaneDeps } from "./deps";
import type { PooledAnswer, StreamSink } from "./upstream-pool";

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
  const service = target.service.name;
  const draining = d.draining();
  const answerHead = (status: number): AnswerHead => ({
    status,
    requestId,
    security: d.security,
    rateLimit: { limit: d.rateMax, remaining: Math.max(0, d.rateMax - rate.current), reset: Math.ceil(rate.ttl / 1000) },
    close: !req.keepAlive || draining,
    draining,
    keepAliveTimeoutMs: d.server.keepAliveTimeout,
  });
  const headOnly = method === "HEAD";
  let settled = false;

  const completed = (status: number, drainReason?: string) => {
    const ms = performance.now() - req.startedAt;
    d.metrics.httpDuration.observe({ method, route: "/api/*", status_code: String(status) }, ms / 1000);
    const level = drainReason ? "warn" : status >= 500 ? "error" : "info";
    if (d.accessLog.isLevelEnabled(level)) {
      const clientRequestId = clientRequestIdOf(msg);
      d.accessLog[level]({ requestId, ...(clientRequestId ? { clientRequestId } : {}), method, url: d.pathOf(req.url), statusCode: status, ms: Math.round(ms * 10) / 10, ...(drainReason ? { reason: drainReason } : {}) }, "request completed");
    }
    d.usage?.recordRequest(d.routes, req.url, method, status, ms, identity);
  };
  const finish = () => conn.finish(req.keepAlive && !draining);
  const answerError = (status: 502 | 504, code: string, message: string) => {
    conn.write(wholeAnswer(answerHead(status), undefined, errorBodyOf(requestId, code, message), false));
    completed(status);
    finish();
  };
  const upstreamFailed = (timedOut: boolean, message: string) => {
    d.upstreamTotal.inc({ upstream: service, status_code: timedOut ? "504" : "502" });
    d.log.warn({ upstream: service, err: { message } }, "upstream request failed");
  };

  // The whole-request budget and the upstream's (PROXY_TIMEOUT_MS, within it), as on the Fastify path:
  // the shorter one answers (the request's own when they are equal: its timer is armed first there).
  const upstreamFirst = d.proxyTimeoutMs < d.requestTimeoutMs;
  const timer = setTimeout(
    () => {
      if (settled) return;
      settled = true;
      sent.abandon();
      upstreamFailed(true, "Headers Timeout Error");
      if (upstreamFirst) return answerError(504, "UPSTREAM_TIMEOUT", upstreamUnavailableText(service));
      d.log.warn({ requestId, url: d.pathOf(req.url), timeoutMs: d.requestTimeoutMs }, "request timed out at the gateway");
      answerError(504, "GATEWAY_TIMEOUT", `No answer within ${d.requestTimeoutMs} ms`);
    },
    upstreamFirst ? d.proxyTimeoutMs : d.requestTimeoutMs,
  );
  const gone = () => {
    // The client went away before its answer: the upstream's is not waited for.
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    sent.abandon();
  };
  conn.socket.once("close", gone);
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    conn.socket.removeListener("close", gone);
    return true;
  };

  const sent = d.pool.send(base, {
    head,
    head_only: headOnly,
    onAnswer: (a: PooledAnswer) => {
      if (!settle()) return;
      d.upstreamTotal.inc({ upstream: service, status_code: String(a.statusCode) });
      if (a.statusCode < 200 || a.statusCode > 599) return answerError(502, "UPSTREAM_UNAVAILABLE", `${service} gave an invalid answer`);
      // A service closing behind the gateway (a deploy's drain): forwarded, logged as a drain answer.
      const drain = isClosingAnswer(a.statusCode, a.body) ? `${service} shutting down (its answer forwarded)` : undefined;
      conn.write(wholeAnswer(answerHead(a.statusCode), headersOf(a.rawHeaders), a.body, headOnly));
      completed(a.statusCode, drain);
      finish();
    },
    onStream: (a: PooledAnswer, more: StreamSink) => {
      if (!settle()) return;
      d.upstreamTotal.inc({ upstream: service, status_code: String(a.statusCode) });
      const { head: streamHead, chunked } = streamedHead(answerHead(a.statusCode), headersOf(a.rawHeaders));
      const frame = (b: Buffer) => (chunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`, "latin1"), b, CRLF]) : b);
      conn.write(streamHead);
      conn.write(frame(a.body));
      const onDrain = () => more.resume?.();
      conn.socket.on("drain", onDrain);
      more.write = (chunk, err) => {
        if (err) {
          conn.socket.removeListener("drain", onDrain);
          completed(a.statusCode);
          conn.destroy(); // the answer cannot be finished: the client sees it cut, as on the Fastify path
          return false;
        }
        if (chunk === null) {
          conn.socket.removeListener("drain", onDrain);
          if (chunked) conn.write(LAST_CHUNK);
          completed(a.statusCode);
          finish();
          return true;
        }
        return chunk.length === 0 || conn.write(frame(chunk));
      };
    },
    onFailure: (err: Error) => {
      if (!settle()) return;
      upstreamFailed(false, err.message);
      answerError(502, "UPSTREAM_UNAVAILABLE", upstreamUnavailableText(service));
    },
  });
  return true;
}

const CRLF = Buffer.from("\r\n");
const LAST_CHUNK = Buffer.from("0\r\n\r\n");
