/**
 * The gateway's counters in Dragonfly (shared by every replica), each one round trip:
 * - a per-client-IP cap on authenticated traffic (many accounts behind one address);
 * - failed API-key verifications per key prefix and per client IP (guessing keys costs the
 *   guesser a 429 long before it costs PostgreSQL anything).
 * The per-user / per-IP request limit itself is @fastify/rate-limit (registered in ./index.ts).
 * Counters fail open when Dragonfly is unreachable (logged by the caller; /ready reports it).
 */
import type { Redis, Result } from "ioredis";
import { HttpError } from "../../kit";

declare module "ioredis" {
  interface RedisCommander<Context> {
    /** INCR, start the window on the first hit, return count and remaining ms (defined below). */
    gwCount(key: string, windowMs: number): Result<[number, number], Context>;
  }
}

const COUNT_LUA = `local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {c, redis.call('PTTL', KEYS[1])}`;

const retryAfter = (ttlMs: number) => ({ "retry-after": String(Math.max(1, Math.ceil(ttlMs / 1000))) });

export class GatewayLimits {
  constructor(
    private readonly redis: Redis,
    private readonly o: { windowMs: number; ipMax: number; keyFailureMax: number; keyFailureWindowMs: number },
  ) {
    redis.defineCommand("gwCount", { numberOfKeys: 1, lua: COUNT_LUA });
  }

  /** Counts one authenticated request of `ip`; throws the 429 beyond the cap. */
  async checkIp(ip: string): Promise<void> {
    let count: number;
    let ttl: number;
    try {
      [count, ttl] = await this.redis.gwCount(`gw-rl-ip:${ip}`, this.o.windowMs);
    } catch {
      return; // fail open, like the per-user limit
    }
    if (count > this.o.ipMax)
      throw new HttpError(429, "RATE_LIMITED", `Rate limit exceeded for this client address: ${this.o.ipMax} requests per window`, undefined, retryAfter(ttl));
  }

  private failureKeys(ip: string, prefix?: string): string[] {
    return prefix ? [`gw-akfail:ip:${ip}`, `gw-akfail:p:${prefix}`] : [`gw-akfail:ip:${ip}`];
  }

  /** Throws a 429 when this address or this key prefix has failed too often lately. */
  async assertKeyAttemptsLeft(ip: string, prefix?: string): Promise<void> {
    const keys = this.failureKeys(ip, prefix);
    let counts: (string | null)[];
    try {
      counts = await this.redis.mget(...keys);
    } catch {
      return;
    }
    const over = counts.findIndex((c) => Number(c ?? 0) >= this.o.keyFailureMax);
    if (over >= 0) {
      const ttl = await this.redis.pttl(keys[over]).catch(() => this.o.keyFailureWindowMs);
      throw new HttpError(429, "RATE_LIMITED", "Too many failed API key attempts; try again later", undefined, retryAfter(ttl));
    }
  }

  async recordKeyFailure(ip: string, prefix?: string): Promise<void> {
    await Promise.all(this.failureKeys(ip, prefix).map((k) => this.redis.gwCount(k, this.o.keyFailureWindowMs))).catch(() => undefined);
  }
}
