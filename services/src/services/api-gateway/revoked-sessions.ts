/**
 * Sessions ended one at a time (a logout, or a refresh-token family revoked when a rotated token came
 * back), as the gateway sees them: an access token whose `sid` is such a session is refused at once,
 * not at its expiry (user-management/user-state.ts has the messages and keys).
 *
 * - Dragonfly holds `auth:session-revoked:<sid>` for SESSION_REVOCATION_TTL_S, the longest an access
 *   token can live: the record every replica reads, bounded by the sessions ended in the last hour.
 * - In process: the revocations heard on `auth:user-changes` (`session:<sid>`), kept as long, and the
 *   sessions looked up and found live, trusted only while the subscription is live (up to the local
 *   TTL). When the subscription drops, what was found live is forgotten and every token of a session
 *   is read through to Dragonfly until it is live again (pub/sub is at-most-once: a revocation sent
 *   meanwhile is in Dragonfly, not necessarily in this process). Revocations already heard are kept:
 *   a session never comes back.
 * - When Dragonfly cannot answer, the request gets 503 (fail closed), as when the user's state cannot
 *   be read: Dragonfly holds the only record of a revocation younger than the token (PostgreSQL knows
 *   the family is revoked, but asking it per request is what this record avoids), and the gateway is
 *   not ready without Dragonfly anyway (/ready), so traffic moves to a replica that has it.
 */
import type { Redis } from "ioredis";
import { unavailable } from "../../kit";
import { revokedSessionKey, SESSION_REVOCATION_TTL_S } from "../user-management/user-state";

export class RevokedSessions {
  /** Session id -> until when its revocation is kept here (ms). */
  private readonly revoked = new Map<string, number>();
  /** Session id -> until when its "not revoked" answer may be reused (ms); only while subscribed. */
  private readonly live = new Map<string, number>();
  /** Moved on whenever a message may have been missed or a revocation forgotten: loads in flight are then not kept. */
  private generation = 0;
  /** Sessions whose answer is being read again ahead of its end (refreshAhead). */
  private readonly refreshing = new Set<string>();

  constructor(
    private readonly redis: Redis,
    private readonly subscribed: () => boolean,
    private readonly localTtlMs: number,
    private readonly max = 100_000,
  ) {}

  /** A `session:<sid>` message, or `*`: messages may have been missed (subscription down or renewed). */
  heard(sessionId: string): void {
    if (sessionId === "*") {
      this.live.clear();
      this.generation++;
      return;
    }
    const now = Date.now();
    if (this.revoked.size >= this.max && !this.revoked.has(sessionId)) this.makeRoom(now);
    this.revoked.set(sessionId, now + SESSION_REVOCATION_TTL_S * 1000);
    this.live.delete(sessionId);
  }

  /** From the process alone: true revoked, false known live (subscribed), undefined when Dragonfly must be asked. */
  peek(sessionId: string): boolean | undefined {
    const now = Date.now();
    const until = this.revoked.get(sessionId);
    if (until !== undefined && until > now) return true;
    if (!this.subscribed()) return undefined;
    const liveUntil = this.live.get(sessionId);
    return liveUntil !== undefined && liveUntil > now ? false : undefined;
  }

  /** Whether the session was revoked; throws a 503 when Dragonfly cannot tell. */
  async isRevoked(sessionId: string): Promise<boolean> {
    const known = this.peek(sessionId);
    if (known !== undefined) return known;
    return this.load(sessionId);
  }

  /**
   * A live session's answer read again from Dragonfly before it runs out (its last quarter), in the
   * background: a busy client's requests keep finding it in process (the gateway's fast lane serves
   * only what the process can decide). The answer kept is no older than before: localTtlMs from its read.
   */
  refreshAhead(sessionId: string): void {
    const liveUntil = this.live.get(sessionId);
    if (liveUntil === undefined || liveUntil - Date.now() > this.localTtlMs / 4 || this.refreshing.has(sessionId)) return;
    this.refreshing.add(sessionId);
    this.load(sessionId)
      .catch(() => undefined)
      .finally(() => this.refreshing.delete(sessionId));
  }

  private async load(sessionId: string): Promise<boolean> {
    const generation = this.generation;
    let found: number;
    try {
      found = await this.redis.exists(revokedSessionKey(sessionId));
    } catch {
      throw unavailable("AUTH_UNAVAILABLE", "Authentication temporarily unavailable", 1);
    }
    if (found > 0) {
      this.heard(sessionId);
      return true;
    }
    // A revocation heard while the read was out wins over its answer (the read may predate the SET).
    if (this.revoked.has(sessionId)) return true;
    if (this.subscribed() && generation === this.generation && this.localTtlMs > 0) {
      if (this.live.size >= this.max) this.live.clear();
      this.live.set(sessionId, Date.now() + this.localTtlMs);
    }
    return false;
  }

  /** Drops expired revocations; if that is not enough, all of them (Dragonfly still holds each) and every live answer. */
  private makeRoom(now: number): void {
    for (const [id, until] of this.revoked) if (until <= now) this.revoked.delete(id);
    if (this.revoked.size < this.max) return;
    this.revoked.clear();
    this.heard("*");
  }

  get size(): { revoked: number; live: number } {
    return { revoked: this.revoked.size, live: this.live.size };
  }
}
