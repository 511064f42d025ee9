/**
 * user-management's Dragonfly access: the failed-login counters of the lockout and the API key
 * cache the gateway reads (`apikey:<sha256>`, see ./api-keys.ts).
 */
import type { Redis } from "ioredis";
import type { FastifyBaseLogger } from "fastify";
import { unavailable, type HttpError } from "../../kit";
import { apiKeyCacheKey, API_KEY_CACHE_TTL_S, type ApiKeyIdentity } from "./api-keys";
import { accountLocked, lockoutRemainingMs, sha256 } from "./domain";
import { apiKeyChangeMessage, USER_CHANGES_CHANNEL } from "./user-state";


/** Without the counters logins fail closed (503): no unthrottled password guessing while Dragonfly is down. */
function lockoutUnavailable(log: FastifyBaseLogger, err: Error): HttpError {
  log.error({ err: { message: err.message } }, "lockout counters unavailable");
  return unavailable("LOGIN_UNAVAILABLE", "Login temporarily unavailable", 5);
}

/** How many failed attempts a window allows: from one client address for one account, and for the account from all addresses. */
export interface FailureLimits {
  /** Per (account, client address): what locks an attacker's address out of an account (undefined: no per-address count). */
  perAddress?: number;
  /** Per account, every address together: the backstop against guessing spread over many addresses. */
  perAccount: number;
}

export class LoginCounters {
  /** `kind` names the counters: logins, and password changes (their own, so guessing the current password with a stolen session cannot lock the owner out of logging in). */
  constructor(
    private readonly redis: () => Redis,
    private readonly log: FastifyBaseLogger,
    private readonly windowMs: number,
    private readonly limits: FailureLimits,
    private readonly kind: "login" | "password-change" = "login",
  ) {}

  /** The counters an attempt counts in: the account's, and the account's from this address when counted per address. */
  private keys(email: string, address: string | undefined): Array<{ key: string; max: number }> {
    const account = sha256(email).toString("hex");
    const out = [{ key: `um:${this.kind}-fail:${account}`, max: this.limits.perAccount }];
    if (this.limits.perAddress !== undefined && address !== undefined) {
      out.push({ key: `um:${this.kind}-fail:${account}:${sha256(address).toString("hex").slice(0, 32)}`, max: this.limits.perAddress });
    }
    return out;
  }

  /**
   * Counts one attempt before its password is checked and throws the 423 when a window already holds
   * its maximum (a successful attempt resets the counts); returns the attempts of the narrowest
   * window (this address's, else the account's), this one included. Counted first, in one atomic
   * increment: when the count was read first and a failure recorded after the check, concurrent
   * guesses all read the count before any of them failed, and all were checked. Counted per client
   * address too, so a stranger's failed guesses lock the stranger's address out of the account, not
   * the owner: only `perAccount` failures from every address together lock the account itself.
   */
  async admit(email: string, address?: string): Promise<number> {
    const counters = this.keys(email, address);
    const tx = this.redis().multi();
    for (const c of counters) tx.incr(c.key).pttl(c.key);
    const r = await tx.exec().catch((e: Error) => {
      throw lockoutUnavailable(this.log, e);
    });
    let attempts = 0;
    let lockMs = 0;
    for (const [i, c] of counters.entries()) {
      // First attempt of a window: start the window (PEXPIRE without NX: works on Dragonfly and Redis < 7).
      let ttlMs = Number(r?.[2 * i + 1]?.[1]);
      if (ttlMs < 0) {
        await this.redis().pexpire(c.key, this.windowMs).catch(() => undefined);
        ttlMs = this.windowMs;
      }
      attempts = Number(r?.[2 * i]?.[1] ?? 0);
      lockMs = Math.max(lockMs, lockoutRemainingMs(attempts - 1, ttlMs, c.max));
    }
    if (lockMs > 0) throw accountLocked(lockMs);
    return attempts;
  }

  async reset(email: string, address?: string): Promise<void> {
    await this.redis()
      .del(...this.keys(email, address).map((c) => c.key))
      .catch((e: Error) => this.log.warn({ err: { message: e.message } }, "could not reset failed-login counter"));
  }
}

export class ApiKeyCache {
  constructor(
    private readonly redis: () => Redis,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Caches a verified key for API_KEY_CACHE_TTL_S, or until it expires if that comes first. */
  async put(hash: Buffer, identity: ApiKeyIdentity, log: FastifyBaseLogger = this.log): Promise<void> {
    const ttlMs = Math.min(API_KEY_CACHE_TTL_S * 1000, identity.expiresAt === null ? Infinity : identity.expiresAt - Date.now());
    if (ttlMs <= 0) return;
    await this.redis()
      .set(apiKeyCacheKey(hash), JSON.stringify(identity), "PX", Math.ceil(ttlMs))
      .catch((err: Error) => log.warn({ err: { message: err.message } }, "api key cache write failed"));
  }

  /**
   * Drops cached verifications and tells the gateways, so revocations apply at once. Throws a 503
   * when Dragonfly cannot be told: the caller retries (revoking again is harmless) rather than
   * believing a key is dead while a cache still accepts it.
   */
  async drop(hashes: Buffer[]): Promise<void> {
    if (hashes.length === 0) return;
    try {
      await this.redis().del(...hashes.map(apiKeyCacheKey));
      for (const h of hashes) await this.redis().publish(USER_CHANGES_CHANNEL, apiKeyChangeMessage(h.toString("hex")));
    } catch (err) {
      this.log.error({ err: { message: (err as Error).message } }, "could not drop api key cache entries");
      throw unavailable("REVOCATION_PENDING", "Saved, but the change could not be propagated yet; retry the request", 1);
    }
  }
}
