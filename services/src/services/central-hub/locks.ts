/**
 * Locks for singleton jobs: SET NX PX to acquire (value `<token>|<owner>|<acquiredAtMs>`),
 * Lua compare-and-renew / compare-and-delete so only the holder (by token) can extend or release.
 * Every acquisition also gets a fencing number (INCR), increasing per lock name, that jobs can pass
 * to the systems they write so a stale holder's late writes can be rejected.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";

const lockKey = (name: string) => `hub:lock:${name}`;
const fenceKey = (name: string) => `hub:lock-fence:${name}`;

// KEYS[1] lock key, KEYS[2] fence key; ARGV[1] value; ARGV[2] ttl ms. Returns the fencing number, or
// 0 when the lock is held. One script: with SET NX and INCR as two commands, a lock that expired
// between them could give its stale holder a higher fencing number than the next holder's.
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return redis.call('INCR', KEYS[2])
end
return 0`;

// KEYS[1] lock key; ARGV[1] token; ARGV[2] ttl ms. Returns 1 renewed, 0 held by another, -1 no lock.
const RENEW = `
local v = redis.call('GET', KEYS[1])
if not v then return -1 end
if string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '|' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

// KEYS[1] lock key; ARGV[1] token. Returns 1 released, 0 held by another, -1 no lock.
const RELEASE = `
local v = redis.call('GET', KEYS[1])
if not v then return -1 end
if string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '|' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`;

export interface LockInfo {
  name: string;
  owner: string;
  acquiredAt: string;
  ttlRemainingMs: number;
}

export type AcquireResult = { acquired: true; token: string; fencingToken: number; expiresAt: string } | { acquired: false; holder: LockInfo | null };

/** What a renew or release did: the scripts answer 1 (done), 0 (held by another token), -1 (no lock). */
export type LockOutcome = "renewed" | "released" | "held-by-another" | "missing";

function outcome(reply: unknown, done: "renewed" | "released"): LockOutcome {
  return reply === 1 ? done : reply === 0 ? "held-by-another" : "missing";
}

function parse(name: string, v: string, pttl: number): LockInfo {
  const [, owner, at] = v.split("|");
  return { name, owner: owner ?? "", acquiredAt: new Date(Number(at)).toISOString(), ttlRemainingMs: Math.max(0, pttl) };
}

export class LockManager {
  constructor(private readonly redis: Redis) {}

  async acquire(name: string, owner: string, ttlMs: number): Promise<AcquireResult> {
    const token = randomBytes(16).toString("hex");
    const now = Date.now();
    const fencingToken = Number(await this.redis.eval(ACQUIRE, 2, lockKey(name), fenceKey(name), `${token}|${owner}|${now}`, String(ttlMs)));
    if (fencingToken > 0) return { acquired: true, token, fencingToken, expiresAt: new Date(now + ttlMs).toISOString() };
    return { acquired: false, holder: await this.info(name) };
  }

  async renew(name: string, token: string, ttlMs: number): Promise<LockOutcome> {
    return outcome(await this.redis.eval(RENEW, 1, lockKey(name), token, String(ttlMs)), "renewed");
  }

  async release(name: string, token: string): Promise<LockOutcome> {
    return outcome(await this.redis.eval(RELEASE, 1, lockKey(name), token), "released");
  }

  async info(name: string): Promise<LockInfo | null> {
    const [[, v], [, pttl]] = (await this.redis.multi().get(lockKey(name)).pttl(lockKey(name)).exec()) as [[null, string | null], [null, number]];
    return v ? parse(name, v, pttl) : null;
  }
}
