/**
 * The fast lane's decision for one complete GET or HEAD (./connections.ts). Everything is
 * decided first, with no side effect: the body framing, the kit's framing and Host checks
 * (framingIssue), Fastify's own routing to the proxy route and the kit's preValidation
 * (./fastify-route.ts), a routing decision the Fastify path already made (TargetCache.peek), credentials
 * the Authenticator decides from its caches alone and accepts (no error), the proxy's authorisation
 * (../proxy.ts authorise: 401, an API key's scopes), the IPv6 site cap, the per-IP cap and the
 * per-user (or per-address) rate limit each countable from its live lease and not exceeded, and
 * forwarded headers sendable as they are. Any "no" declines (the Fastify path answers from scratch);
 * a cold cache is a Cold (warmed, then decided again: ./connections.ts), not a "no".
 * Only then are the three counters taken, and the request forwarded (./exchange.ts): from there on the lane answers
 * whatever happens, the upstream's answer, 502 or 504, or the 429 of a client past its share of the lane's
 * connections to the service (counted after the rate limit, as on the Fastify path), in the Fastify path's
 * shape, with its access line, metrics and usage event.
 */
import { addressBucketOf, siteBucketOf } from "../../../kit";
import { clientRequestIdOf } from "../../../kit/app";
import { requestIdOf } from "../../../kit/raw-answers";
import { framingIssue } from "../../../kit/request-framing";
import { GatewayLimits } from "../limits";
import { authorise, upstreamHeaders } from "../proxy";
import { requestHead } from "./answer";
import type { LaneConnection, LaneRequest } from "./connections";
import type { LaneDeps } from "./deps";
import { LaneExchange } from "./exchange";

// Read once: an imported binding compiles to a getter read on every use (two through the kit's index).
const [bucketOf, siteOf] = [addressBucketOf, siteBucketOf];

/**
 * Rate-limit keys made once per address bucket or user and reused: a key built per request is a new
 * string, hashed again by each lease lookup (about 2 µs a request in session 57's profile); one held is
 * hashed once. Bounded as TargetCache is (cleared when full).
 */
class KeyMemo {
  private readonly keys = new Map<string, string>();
  constructor(private readonly make: (of: string) => string) {}

  of(s: string): string {
    let key = this.keys.get(s);
    if (key === undefined) {
      if (this.keys.size >= 10_000) this.keys.clear();
      key = this.make(s);
      this.keys.set(s, key);
    }
    return key;
  }
}
const ipCapKeys = new KeyMemo(GatewayLimits.ipKey);
const userRateKeys = new KeyMemo((userId) => `gw-rl:user:${userId}`);
const addressRateKeys = new KeyMemo((bucket) => `gw-rl:ip:${bucket}`);

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

/** A warm-up bounded by what is left of the request's budget (then Fastify's, under what is left: ./handed-over.ts). */
const within = (req: LaneRequest, p: Promise<boolean>): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, req.deadline! - Date.now()), false);
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
function coldLimit(d: LaneDeps, req: LaneRequest, key: string, max: number): Cold | "limit" {
  if (!d.limits.leasable(key)) return "limit";
  return { reason: "limit", warm: () => within(req, d.limits.lease(key, max).then(() => d.limits.canHit(key))) };
}

/**
 * true when the lane takes `req` (it answers it and calls conn.finish), a Cold to warm and decide
 * again, else why not.
 */
export function serveRequest(d: LaneDeps, req: LaneRequest, conn: LaneConnection): true | Declined | Cold {
  // One whole-request budget from the read, warm-ups and all, as the Fastify path's from its onRequest.
  req.deadline ??= Date.now() + d.requestTimeoutMs;
  req.beforeClose ??= !d.closing();
  // Its id first: it names the request in its warm-ups' calls and in the lane's lines, and goes with it
  // if it is handed over (./handed-over.ts: Fastify's id for it, the same).
  req.requestId ??= requestIdOf(d.server, req.msg);
  if (d.closing()) return "closing";
  const { msg, method } = req;
  const h = msg.headers;
  if (h["transfer-encoding"] !== undefined || (h["content-length"] !== undefined && h["content-length"] !== "0") || h.expect !== undefined || h.upgrade !== undefined) return "framing";
  if (framingIssue(msg, d.maxHeaders)) return "framing";
  // Only what Fastify's router takes to the proxy route with nothing the kit refuses before it (./fastify-route.ts).
  if (!d.fastifyRoute.reachesProxy(method, req.url)) return "route";
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
  const bucket = bucketOf(ip);
  const site = siteOf(ip);
  const siteKey = site ? GatewayLimits.siteKey(site) : undefined;
  // One instant for every check and count below: each lease found live by canHit is still live for its hit
  // (with a clock read each, a lease ending between the two left the hit nothing: an exchange without its
  // count, whose answer threw and ended the process, session 59's gateway bench).
  const now = Date.now();
  if (siteKey && !d.limits.canHit(siteKey, now)) return coldLimit(d, req, siteKey, d.limits.o.siteMax);
  const requestId = req.requestId;
  const auth = d.authenticator.cached(h, conn.tokens);
  if (!auth) {
    // An API key is verified by Fastify's path alone: a wrong one is counted as a failure per
    // verification (limits.ts admitKeyAttempt), and one here and one there would count it twice.
    if (h["x-api-key"] !== undefined) return "credentials";
    return {
      reason: "credentials",
      // Its answer goes with the request if it is handed over (an error, say): Fastify does not ask again.
      warm: () =>
        within(
          req,
          d.authenticator.authenticate(h, bucket, requestId, Math.max(1, req.deadline! - Date.now())).then((a) => {
            req.auth = a;
            return !a.error && d.authenticator.cached(h) !== undefined;
          }),
        ),
    };
  }
  if (auth.error) return "credentials";
  let identity;
  try {
    identity = authorise(target, auth, method);
  } catch {
    return "credentials";
  }
  const ipKey = identity ? ipCapKeys.of(bucket) : undefined;
  if (ipKey && !d.limits.canHit(ipKey, now)) return coldLimit(d, req, ipKey, d.limits.o.ipMax);
  const rateKey = identity ? userRateKeys.of(identity.userId) : addressRateKeys.of(bucket);
  if (!d.limits.canHit(rateKey, now)) return coldLimit(d, req, rateKey, d.rateMax);
  const base = d.bases.get(target.service.name)!;
  const head = requestHead(method, `${target.path}${target.search}`, base.host, upstreamHeaders(h, requestId, clientRequestIdOf(msg), ip, identity));
  if (!head) return "headers";

  // Decided: the tokens are taken (each from its live lease, synchronously), then the request is the lane's.
  if (siteKey) d.limits.hit(siteKey, d.limits.o.siteMax, now);
  if (ipKey) d.limits.hit(ipKey, d.limits.o.ipMax, now);
  const rate = d.limits.hit(rateKey, d.rateMax, now)!;
  new LaneExchange(d, req, conn, head, target.service.name, requestId, identity, rate, identity ? identity.userId : ip).start(base);
  return true;
}
