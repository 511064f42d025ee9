/**
 * The gateway's counters in Dragonfly (shared by every replica):
 * - the per-user / per-IP request limit, @fastify/rate-limit (registered in ./index.ts) on the
 *   leased store below, and a per-client-IP cap on authenticated traffic (many accounts behind
 *   one address), and every request from an IPv6 site (/48) once more at a higher cap (checkSite):
 *   all leased (./leased-counter.ts), not one round trip per request;
 * - API-key verifications per client IP, counted before the lookup and given back for a genuine key
 *   (guessing keys costs the guesser a 429 long before it costs PostgreSQL anything, concurrent
 *   guesses too), one round trip each (rare path).
 * Counters fail open when Dragonfly is unreachable (logged by the caller; /ready reports it).
 */
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from "@fastify/rate-limit";
import type { Redis, Result } from "ioredis";
import { HttpError } from "../../kit";
import { LeasedCounter, type Hit } from "./leased-counter";

declare module "ioredis" {
  interface RedisCommander<Context> {
    /** INCR, start the window on the first hit, return count and remaining ms (defined below). */
    gwCount(key: string, windowMs: number): Result<[number, number], Context>;
    /** DECR while above 0 (an attempt given back; never a key without its window's expiry). */
    gwGiveBack(key: string): Result<number, Context>;
  }
}

const COUNT_LUA = `local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {c, redis.call('PTTL', KEYS[1])}`;
const GIVE_BACK_LUA = `if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then return redis.call('DECR', KEYS[1]) end
return 0`;

const retryAfter = (ttlMs: number) => ({ "retry-after": String(Math.max(1, Math.ceil(ttlMs / 1000))) });

export class GatewayLimits {
  private readonly counter: LeasedCounter;

  constructor(
    private readonly redis: Redis,
    readonly o: { windowMs: number; ipMax: number; siteMax: number; keyFailureMax: number; keyFailureWindowMs: number },
  ) {
    redis.defineCommand("gwCount", { numberOfKeys: 1, lua: COUNT_LUA });
    redis.defineCommand("gwGiveBack", { numberOfKeys: 1, lua: GIVE_BACK_LUA });
    this.counter = new LeasedCounter(redis);
  }

  /**
   * Counts one authenticated request of `ip`: undefined when counted from the live lease
   * (synchronously), else a promise; either way the 429 beyond the cap is thrown (or rejected).
   */
  checkIp(ip: string): Promise<void> | undefined {
    return this.check(GatewayLimits.ipKey(ip), this.o.ipMax, "client address");
  }

  /**
   * Counts one request (any, anonymous too) from an IPv6 site, its /48 (kit siteBucketOf), against
   * `siteMax`: a client holding a /48 or /56 has 65,536 or 256 /64 buckets of its own, each with the
   * full per-address budget. Same leased counters and answers as checkIp.
   */
  checkSite(site: string): Promise<void> | undefined {
    return this.check(GatewayLimits.siteKey(site), this.o.siteMax, "client network");
  }

  /** Keys of the counters above, for the fast lane (./fast-lane/serve.ts): checked with `canHit`, counted with `hit`. */
  static readonly ipKey = (ip: string) => `gw-rl-ip:${ip}`;
  static readonly siteKey = (site: string) => `gw-rl-site:${site}`;

  /** Whether one request of `key` can be counted from its live lease at `now`, under its limit (nothing counted). */
  canHit(key: string, now?: number): boolean {
    return this.counter.canHit(key, now);
  }

  /** Whether `key` has no live lease but may get one (the fast lane warms it: `lease`, then decides again). */
  leasable(key: string): boolean {
    return this.counter.leasable(key);
  }

  /** Leases a slice of `key` (limit `max`), counting no request; rejects when Dragonfly cannot be asked. */
  lease(key: string, max: number): Promise<void> {
    return this.counter.lease(key, max, this.o.windowMs);
  }

  /** Counts one request of `key` from its live lease (after canHit said it can at the same `now`: synchronous). */
  hit(key: string, max: number, now?: number): Hit | undefined {
    const hit = this.counter.tryHit(key, max, now);
    this.counter.refillAhead(key, max, this.o.windowMs);
    return hit;
  }

  private check(key: string, max: number, what: string): Promise<void> | undefined {
    const local = this.counter.tryHit(key, max);
    if (local) {
      this.counter.refillAhead(key, max, this.o.windowMs);
      return this.assertUnder(local, max, what);
    }
    return this.counter.hit(key, max, this.o.windowMs).then(
      (hit) => this.assertUnder(hit, max, what),
      () => undefined, // fail open, like the per-user limit
    );
  }

  private assertUnder(hit: Hit, max: number, what: string): undefined {
    if (hit.current > max)
      throw new HttpError(429, "RATE_LIMITED", `Rate limit exceeded for this ${what}: ${max} requests per window`, undefined, retryAfter(hit.ttl));
    return undefined;
  }

  /**
   * A @fastify/rate-limit store on the leased counter, keys under `nameSpace` (per-route stores,
   * which the gateway does not use, get the route in the key like the plugin's own Redis store).
   */
  rateLimitStore(nameSpace: string, max: number, windowMs: number): FastifyRateLimitStoreCtor {
    const counter = this.counter;
    class LeasedStore implements FastifyRateLimitStore {
      private readonly prefix: string;
      constructor(_options: unknown, prefix = nameSpace) {
        this.prefix = prefix;
      }
      incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void, windowArg?: number, maxArg?: number): void {
        const local = counter.tryHit(this.prefix + key, maxArg ?? max);
        if (local) {
          counter.refillAhead(this.prefix + key, maxArg ?? max, windowArg ?? windowMs);
          return callback(null, local);
        }
        counter.hit(this.prefix + key, maxArg ?? max, windowArg ?? windowMs).then(
          (hit) => callback(null, hit),
          (err: Error) => callback(err),
        );
      }
      // The plugin passes its merged parameters ({ routeInfo: the route's options }), not what its types say.
      child(options: object): FastifyRateLimitStore {
        const route: object = "routeInfo" in options && typeof options.routeInfo === "object" && options.routeInfo !== null ? options.routeInfo : options;
        const part = (k: string) => (k in route ? String((route as Record<string, unknown>)[k]) : "");
        return new LeasedStore(undefined, `${this.prefix}${part("method")}${part("url")}-`);
      }
    }
    return LeasedStore;
  }

  /**
   * Failed verifications are counted per client address only. Not per key prefix: a key's secret is
   * 256 random bits, so guessing it from many addresses gets nowhere, and a per-prefix count let
   * anyone who saw a prefix (it is shown in listings) block the genuine key while it was not cached.
   */
  private failureKey(ip: string): string {
    return `gw-akfail:ip:${ip}`;
  }

  /**
   * Counts one API-key verification of this address before it is made, and throws the 429 when the
   * window already holds `keyFailureMax` (the attempt counted beyond it changes nothing: the window's
   * end was set by its first). Answers the give-back, for a key that turned out genuine or could not be
   * verified: what stays counted are the failures. Counted first, in one atomic increment: when the
   * count was read first and the failure recorded after the lookup, 30 wrong keys sent at once all read
   * the count before any of them failed, and all 30 were looked up at a limit of 5 (session 49's race
   * suite). So more than `keyFailureMax` verifications of different keys from one address at once are
   * refused like guesses until the others answer (one key's are one lookup: authenticate.ts).
   * Fails open when Dragonfly cannot be asked, as the request limits do.
   */
  async admitKeyAttempt(ip: string): Promise<() => Promise<void>> {
    const key = this.failureKey(ip);
    let counted: [number, number];
    try {
      counted = await this.redis.gwCount(key, this.o.keyFailureWindowMs);
    } catch {
      return async () => undefined;
    }
    const [attempts, ttl] = counted;
    if (attempts > this.o.keyFailureMax) throw new HttpError(429, "RATE_LIMITED", "Too many failed API key attempts; try again later", undefined, retryAfter(ttl));
    return async () => {
      await this.redis.gwGiveBack(key).catch(() => undefined);
    };
  }
}
