/**
 * Fixed-window request counters shared by every gateway replica through Dragonfly, without a
 * round trip per request (one per request was about a fifth of the gateway's CPU per request,
 * README "Gateway speed").
 *
 * A replica leases a slice of a key's window budget with one INCRBY (never past the limit: the
 * script grants at most what is left) and spends it in process. So the sum admitted by all
 * replicas in a window never exceeds the limit, exactly as with one INCR per request; what a
 * replica leased and did not spend is lost for that window, so a client may be refused up to
 * (replicas x slice) requests early. The slice is 1/LEASE_DIVISOR of the limit (at least 1: a
 * small limit is counted request by request, as before). Once Dragonfly says the window is spent,
 * the replica refuses locally until the window ends: a flood beyond the limit costs no round trip.
 * A local lease ends when the Dragonfly window does (measured from when the lease was asked for,
 * so never later), so no token outlives its window. The Dragonfly key carries the limit: a count
 * is reservations against that limit, so replicas configured with another limit (during a rollout
 * that changes it) keep their own count rather than reading these reservations as requests.
 */
import type { Redis, Result } from "ioredis";

declare module "ioredis" {
  interface RedisCommander<Context> {
    /** Grants up to `want` of what is left of `max` in the key's window: [count after, granted, ttl ms]. */
    gwLease(key: string, max: number, want: number, windowMs: number): Result<[number, number, number], Context>;
  }
}

const LEASE_LUA = `local max = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.max(0, math.min(tonumber(ARGV[2]), max - cur))
if grant > 0 then cur = redis.call('INCRBY', KEYS[1], grant) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]); ttl = tonumber(ARGV[3]) end
return {cur, grant, ttl}`;

/** The slice of a limit one lease asks for: 1/LEASE_DIVISOR of it. */
export const LEASE_DIVISOR = 50;
const MAX_LEASE = 10_000;
const MAX_KEYS = 100_000;
/** A key hit this close to its window's end has the next window's slice leased as it turns (refillAhead). */
const TURN_AHEAD_MS = 1_000;
/** A lease with this little left when it comes is a window's tail (lease): of no use to whoever waited for it. */
const TAIL_MS = 5;
/** Asks for one lease at most (lease): a window's tail, then the next window's slice, with a spare. */
const TAIL_ASKS = 3;

export interface Hit {
  /** Requests counted in this window, including this one (above the limit: refuse). */
  current: number;
  /** Milliseconds until the window ends. */
  ttl: number;
}

interface Lease {
  /** Local clock time the Dragonfly window ends at, at the latest. */
  endsAt: number;
  /** Leased tokens not spent yet. */
  left: number;
  /** The key's count in Dragonfly after this lease. */
  counted: number;
  /** Dragonfly had nothing left to grant: refuse locally until endsAt. */
  spent: boolean;
}

export function leaseSize(max: number): number {
  return Math.max(1, Math.min(MAX_LEASE, Math.floor(max / LEASE_DIVISOR)));
}

export class LeasedCounter {
  private readonly leases = new Map<string, Lease>();
  private readonly refills = new Map<string, Promise<void>>();
  /** Keys whose next window's slice is asked for as their window ends (refillAhead). */
  private readonly turns = new Set<string>();

  constructor(private readonly redis: Redis) {
    redis.defineCommand("gwLease", { numberOfKeys: 1, lua: LEASE_LUA });
  }

  /**
   * Counts one request against `key` from the live lease alone, synchronously; undefined when the
   * lease is missing, ended or used up (then `hit()` asks Dragonfly).
   */
  tryHit(key: string, max: number, now = Date.now()): Hit | undefined {
    const lease = this.leases.get(key);
    if (!lease || lease.endsAt <= now) return undefined;
    if (lease.left > 0) {
      lease.left--;
      return { current: lease.counted - lease.left, ttl: lease.endsAt - now };
    }
    return lease.spent ? { current: Math.max(max, lease.counted) + 1, ttl: lease.endsAt - now } : undefined;
  }

  /**
   * Whether `tryHit` would count a request against `key` from the live lease and under `max`, without
   * counting it (the fast lane decides everything before it takes anything). At `now`: the same instant
   * as the tryHit that follows, or a lease ending between the two leaves that tryHit nothing to count.
   */
  canHit(key: string, now = Date.now()): boolean {
    const lease = this.leases.get(key);
    return lease !== undefined && lease.endsAt > now && lease.left > 0;
  }

  /**
   * Whether `key` has no live lease to count from but may get one (none, ended, or used up and not
   * known spent): the fast lane then leases it (`lease`) and decides again. A spent one is refused
   * locally until its end, with no round trip.
   */
  leasable(key: string): boolean {
    const lease = this.leases.get(key);
    return !lease || lease.endsAt <= Date.now() || (lease.left === 0 && !lease.spent);
  }

  /**
   * Leases the next slice of `key`, counting no request (the refill `hit` waits for, shared with it); rejects when
   * Dragonfly cannot be asked. Asked in a window's last milliseconds, Dragonfly grants from that window a slice that
   * has ended by the time its answer is back: asked again then (the old window gone: the next one's slice), up to
   * TAIL_ASKS times, so a caller finds a live lease. (The fast lane's warm-up handed such requests to the Fastify
   * path: about 30 at every window's turn in session 60's gateway bench, each a slow request and a deoptimisation.)
   */
  async lease(key: string, max: number, windowMs: number): Promise<void> {
    for (let asked = 1; ; asked++) {
      await this.leaseOnce(key, max, windowMs);
      const lease = this.leases.get(key);
      const left = lease ? lease.endsAt - Date.now() : Infinity;
      if (asked >= TAIL_ASKS || left > TAIL_MS) return;
      // Asked again once the old window has ended (before, Dragonfly would grant from it again).
      if (left >= 0) await new Promise((resolve) => setTimeout(resolve, left + 1));
    }
  }

  private leaseOnce(key: string, max: number, windowMs: number): Promise<void> {
    let refill = this.refills.get(key);
    if (!refill) {
      refill = this.refill(key, max, windowMs).finally(() => this.refills.delete(key));
      this.refills.set(key, refill);
    }
    return refill;
  }

  /** Counts one request against `key`; rejects only when Dragonfly cannot be asked (callers fail open). */
  async hit(key: string, max: number, windowMs: number): Promise<Hit> {
    for (;;) {
      const local = this.tryHit(key, max);
      if (local) return local;
      await this.lease(key, max, windowMs); // then take from the new lease (or start the next one)
    }
  }

  /**
   * Leases the next slice of `key` before this one runs out (its last quarter), in the background:
   * a busy key keeps being countable in process (the gateway's fast lane counts only from a live
   * lease). The slice is taken from the same window and added to what is left (refill).
   */
  refillAhead(key: string, max: number, windowMs: number): void {
    const lease = this.leases.get(key);
    if (!lease) return;
    if (!lease.spent && lease.left <= leaseSize(max) / 4) this.refillInBackground(key, max, windowMs);
    // A key busy as its window ends gets the next window's slice as the window turns (not on the first
    // request after it, which would find no live lease). Dragonfly may hold the old window a moment
    // longer than the local end (measured from when the lease was asked): its lease then ends at once,
    // and the key's next hit schedules the turn again.
    const toEnd = lease.endsAt - Date.now();
    if (toEnd >= TURN_AHEAD_MS || this.turns.has(key)) return;
    this.turns.add(key);
    setTimeout(() => {
      this.turns.delete(key);
      this.refillInBackground(key, max, windowMs);
    }, Math.max(0, toEnd) + 1).unref();
  }

  private refillInBackground(key: string, max: number, windowMs: number): void {
    if (this.refills.has(key)) return;
    const refill = this.refill(key, max, windowMs)
      .catch(() => undefined)
      .finally(() => this.refills.delete(key));
    this.refills.set(key, refill);
  }

  private async refill(key: string, max: number, windowMs: number): Promise<void> {
    const askedAt = Date.now();
    const [counted, granted, ttl] = await this.redis.gwLease(`${key}:${max}`, max, leaseSize(max), windowMs);
    if (this.leases.size >= MAX_KEYS) this.sweep(askedAt);
    // Tokens left of a live lease (a refill ahead) are carried over, and the lease still ends when the
    // earlier one did at the latest: tokens of a window never outlive it (the new slice, if the window
    // turned meanwhile, ends with the old one: refused early, never admitted twice).
    const prev = this.leases.get(key);
    const carried = prev && prev.endsAt > Date.now() ? prev.left : 0;
    const endsAt = carried > 0 ? Math.min(prev!.endsAt, askedAt + ttl) : askedAt + ttl;
    this.leases.set(key, { endsAt, left: granted + carried, counted, spent: granted === 0 || counted >= max });
  }

  /** Drops ended leases; if that is not enough, all of them (unspent tokens are lost: never over-admits). */
  private sweep(now: number): void {
    for (const [k, l] of this.leases) if (l.endsAt <= now) this.leases.delete(k);
    if (this.leases.size >= MAX_KEYS) this.leases.clear();
  }
}
