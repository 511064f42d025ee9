/**
 * Locks for singleton jobs: one key per lock with a PX TTL, written by Lua scripts
 * (./lock-scripts.ts) so only the holder (by token) can extend or release. Every acquisition also
 * gets a fencing number, increasing per lock name, that jobs can pass to the systems they write so
 * a stale holder's late writes can be rejected: the greatest of the last one + 1, the datastore's and this replica's
 * clocks in microseconds, so the per-name counter can expire (`fenceTtlMs` after the name's last
 * acquisition) without a later fence falling below an earlier one (ACQUIRE's comment says why). An acquire may carry an idempotency key:
 * a retry whose first answer was lost gets that acquisition back instead of a 409 against itself.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { ACQUIRE, RELEASE, RELEASED, RENEW } from "./lock-scripts";

const lockKey = (name: string) => `hub:lock:${name}`;
const fenceKey = (name: string) => `hub:lock-fence:${name}`;

export interface LockInfo {
  name: string;
  owner: string;
  acquiredAt: string;
  ttlRemainingMs: number;
}

export interface Acquisition {
  token: string;
  fencingToken: number;
  expiresAt: string;
}

/**
 * `acquired` anew, `replayed` (this owner's acquisition under this key, still held), `locked` by
 * another acquisition, or `key-used`: this owner's acquisition under this key was released.
 */
export type AcquireResult =
  | ({ outcome: "acquired" | "replayed" } & Acquisition)
  | { outcome: "locked"; holder: LockInfo | null }
  | { outcome: "key-used" };

/** What a renew or release did: the scripts answer 1 (done), 0 (held by another token), -1 (no lock). */
export type LockOutcome = "renewed" | "released" | "held-by-another" | "missing";

function outcome(reply: unknown, done: "renewed" | "released"): LockOutcome {
  return reply === 1 ? done : reply === 0 ? "held-by-another" : "missing";
}

/** The holder in a lock value, or null for a released marker or a value this code did not write. */
function parse(name: string, v: string, pttl: number): LockInfo | null {
  const [token, owner, at] = v.split("|");
  const acquiredAtMs = Number(at);
  if (token === RELEASED || !owner || !Number.isSafeInteger(acquiredAtMs)) return null;
  return { name, owner, acquiredAt: new Date(acquiredAtMs).toISOString(), ttlRemainingMs: Math.max(0, pttl) };
}

const iso = (ms: unknown) => new Date(Number(ms)).toISOString();

export class LockManager {
  /** `fenceTtlMs`: how long a name's fence counter outlives its last acquisition. */
  constructor(
    private readonly redis: Redis,
    private readonly fenceTtlMs: number,
  ) {}

  /** `idempotencyKey` null: a plain acquire, which a retry cannot recognise. */
  async acquire(name: string, owner: string, ttlMs: number, idempotencyKey: string | null): Promise<AcquireResult> {
    const token = randomBytes(16).toString("hex");
    const now = Date.now();
    const args = [token, owner, String(now), String(ttlMs), String(now + ttlMs), idempotencyKey ?? "", String(this.fenceTtlMs)];
    const reply = (await this.redis.eval(ACQUIRE, 2, lockKey(name), fenceKey(name), ...args)) as [string, ...(string | number)[]];
    switch (reply[0]) {
      case "acquired":
      case "replayed":
        return { outcome: reply[0], token: String(reply[1]), fencingToken: Number(reply[2]), expiresAt: iso(reply[3]) };
      case "key-used":
        return { outcome: "key-used" };
      default:
        // The holder read in the same step as the refusal (null only for a value this code cannot read).
        return { outcome: "locked", holder: parse(name, String(reply[1]), Number(reply[2])) };
    }
  }

  /** Extends the holder's lock to `ttlMs` from now; the new expiry when renewed. */
  async renew(name: string, token: string, ttlMs: number): Promise<{ outcome: LockOutcome; expiresAt: string }> {
    const expiresAtMs = Date.now() + ttlMs;
    const reply = await this.redis.eval(RENEW, 1, lockKey(name), token, String(ttlMs), String(expiresAtMs));
    return { outcome: outcome(reply, "renewed"), expiresAt: iso(expiresAtMs) };
  }

  async release(name: string, token: string): Promise<LockOutcome> {
    return outcome(await this.redis.eval(RELEASE, 1, lockKey(name), token), "released");
  }

  async info(name: string): Promise<LockInfo | null> {
    const [[, v], [, pttl]] = (await this.redis.multi().get(lockKey(name)).pttl(lockKey(name)).exec()) as [[null, string | null], [null, number]];
    return v ? parse(name, v, pttl) : null;
  }
}
