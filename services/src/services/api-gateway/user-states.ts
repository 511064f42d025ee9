/**
 * The gateway's view of user states (user-management/user-state.ts has the design): an in-process
 * copy invalidated by `auth:user-changes`, trusted only while the subscription is live; Dragonfly
 * behind it; user-management's /internal/users/:id/state behind that. Also forwards API-key
 * revocations to whoever listens (the verified-key cache of ./authenticate.ts), and sessions ended
 * one at a time to `sessions` (./revoked-sessions.ts), which shares this subscription.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { isShuttingDown, subscribeDragonfly, unavailable, type DragonflySubscriber, type PeerClient } from "../../kit";
import { cachedUserState, legacyUserStateKey, parseUserState, USER_CHANGES_CHANNEL, userStateKey, type UserState } from "../user-management/user-state";
import { RevokedSessions } from "./revoked-sessions";

interface Local {
  state: UserState;
  until: number;
}

/**
 * Invalidations seen per user, so a load that began before one is not kept. Bounded: it holds an
 * entry for every user changed since the last start-over, and users change for ever (each "log out
 * everywhere" adds its user), so past `max` users it starts over and moves to a new generation,
 * which no load in flight belongs to (as after a reconnect).
 */
export class InvalidationCounts {
  private readonly counts = new Map<string, number>();
  private gen = 0;

  constructor(private readonly max = 100_000) {}

  /** Where a load starting now stands; `unchanged(mark, id)` tells whether it may be kept. */
  mark(userId: string): { generation: number; count: number } {
    return { generation: this.gen, count: this.counts.get(userId) ?? 0 };
  }

  unchanged(mark: { generation: number; count: number }, userId: string): boolean {
    return mark.generation === this.gen && (this.counts.get(userId) ?? 0) === mark.count;
  }

  bump(userId: string): void {
    if (this.counts.size >= this.max && !this.counts.has(userId)) this.startOver();
    this.counts.set(userId, (this.counts.get(userId) ?? 0) + 1);
  }

  startOver(): void {
    this.counts.clear();
    this.gen++;
  }

  get size(): number {
    return this.counts.size;
  }
}

export class UserStates {
  private readonly local = new Map<string, Local>();
  /** Users whose state is being read again ahead of its end (refreshAhead). */
  private readonly refreshing = new Set<string>();
  private readonly invalidations = new InvalidationCounts();
  private sub?: DragonflySubscriber;
  onApiKeyRevoked: (hashHex: string) => void = () => undefined;
  /** Sessions ended one at a time (logout, refresh-token reuse): their access tokens are refused. */
  readonly sessions: RevokedSessions;

  constructor(
    private readonly redis: Redis,
    private readonly peers: PeerClient,
    private readonly localTtlMs: number,
    private readonly onError: (err: Error) => void,
  ) {
    this.sessions = new RevokedSessions(redis, () => this.subscribed, localTtlMs);
  }

  /** Subscribes; until the subscription is live every lookup reads Dragonfly. */
  start(): void {
    this.sub = subscribeDragonfly(this.redis, {
      channels: [USER_CHANGES_CHANNEL],
      onError: this.onError,
      onMessage: (_channel, message) => {
        if (message.startsWith("user:")) {
          const id = message.slice(5);
          this.local.delete(id);
          this.invalidations.bump(id);
        } else if (message.startsWith("apikey:")) this.onApiKeyRevoked(message.slice(7));
        else if (message.startsWith("session:")) this.sessions.heard(message.slice(8));
      },
      onDown: () => this.clear(),
      onLive: () => this.clear(), // anything cached before this subscription may have missed a message
    });
  }

  get subscribed(): boolean {
    return this.sub?.live ?? false;
  }

  private clear(): void {
    this.local.clear();
    this.invalidations.startOver();
    this.onApiKeyRevoked("*");
    this.sessions.heard("*");
  }

  async close(): Promise<void> {
    await this.sub?.close();
  }

  /** The user's state from the in-process copy alone (live subscription, not expired), else undefined. */
  peek(userId: string): UserState | undefined {
    if (!this.subscribed) return undefined;
    const hit = this.local.get(userId);
    return hit && hit.until > Date.now() ? hit.state : undefined;
  }

  /** The user's current state; 503 when neither Dragonfly nor user-management can tell. */
  async get(userId: string, requestId: string, timeoutMs: number): Promise<UserState> {
    const hit = this.peek(userId);
    if (hit) return hit;
    return this.loadAndKeep(userId, requestId, timeoutMs);
  }

  /**
   * A user's state read again before the in-process copy runs out (its last quarter), in the
   * background: a busy user's requests keep finding it in process (the gateway's fast lane serves
   * only what the process can decide). Kept as get() keeps it, no longer than localTtlMs from its read.
   */
  refreshAhead(userId: string): void {
    const hit = this.local.get(userId);
    if (!hit || !this.subscribed || hit.until - Date.now() > this.localTtlMs / 4 || this.refreshing.has(userId)) return;
    this.refreshing.add(userId);
    this.loadAndKeep(userId, randomUUID(), 5_000)
      .catch(() => undefined)
      .finally(() => this.refreshing.delete(userId));
  }

  private async loadAndKeep(userId: string, requestId: string, timeoutMs: number): Promise<UserState> {
    const now = Date.now();
    const mark = this.invalidations.mark(userId);
    const state = await this.load(userId, requestId, timeoutMs);
    if (this.subscribed && this.invalidations.unchanged(mark, userId) && this.localTtlMs > 0) {
      if (this.local.size >= 100_000) this.local.clear();
      this.local.set(userId, { state, until: now + this.localTtlMs });
    }
    return state;
  }

  private async load(userId: string, requestId: string, timeoutMs: number): Promise<UserState> {
    // The versioned entry, and the one releases before session 42 write: a change an old replica made
    // after the versioned state sends this load to user-management (user-state.ts, rolling deploys).
    let raw: (string | null)[] = [null, null];
    try {
      raw = await this.redis.mget(userStateKey(userId), legacyUserStateKey(userId));
    } catch (e) {
      this.onError(e as Error);
    }
    const cached = cachedUserState(raw[0] ?? null, raw[1] ?? null);
    if (cached) return cached;
    // A read: cut PEER_CLOSE_GRACE_MS into the gateway's close (kit peers cutOnClose), its 503
    // SHUTTING_DOWN passed on as the drain answer it is, not turned into AUTH_UNAVAILABLE.
    const r = await this.peers
      .call<UserState>("user-management", `/internal/users/${encodeURIComponent(userId)}/state`, { requestId, timeoutMs: Math.min(timeoutMs, 5_000), cutOnClose: true })
      .catch((e: unknown) => {
        if (isShuttingDown(e)) throw e;
        return undefined;
      });
    const state = r?.status === 200 ? parseUserState(JSON.stringify(r.body)) : undefined;
    if (!state) throw unavailable("AUTH_UNAVAILABLE", "Authentication temporarily unavailable", 1);
    return state;
  }
}
