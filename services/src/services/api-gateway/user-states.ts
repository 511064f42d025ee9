/**
 * The gateway's view of user states (user-management/user-state.ts has the design): an in-process
 * copy invalidated by `auth:user-changes`, trusted only while the subscription is live; Dragonfly
 * behind it; user-management's /internal/users/:id/state behind that. Also forwards API-key
 * revocations to whoever listens (the verified-key cache of ./authenticate.ts).
 */
import type { Redis } from "ioredis";
import { HttpError, subscribeDragonfly, type DragonflySubscriber, type PeerClient } from "../../kit";
import { parseUserState, USER_CHANGES_CHANNEL, userStateKey, type UserState } from "../user-management/user-state";

interface Local {
  state: UserState;
  until: number;
}

export class UserStates {
  private readonly local = new Map<string, Local>();
  /** Invalidations seen per user since the last clear: a load that began before one is not kept. */
  private readonly invalidations = new Map<string, number>();
  private generation = 0;
  private sub?: DragonflySubscriber;
  onApiKeyRevoked: (hashHex: string) => void = () => undefined;

  constructor(
    private readonly redis: Redis,
    private readonly peers: PeerClient,
    private readonly localTtlMs: number,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Subscribes; until the subscription is live every lookup reads Dragonfly. */
  start(): void {
    this.sub = subscribeDragonfly(this.redis, {
      channels: [USER_CHANGES_CHANNEL],
      onError: this.onError,
      onMessage: (_channel, message) => {
        if (message.startsWith("user:")) {
          const id = message.slice(5);
          this.local.delete(id);
          this.invalidations.set(id, (this.invalidations.get(id) ?? 0) + 1);
        } else if (message.startsWith("apikey:")) this.onApiKeyRevoked(message.slice(7));
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
    this.invalidations.clear();
    this.generation++;
    this.onApiKeyRevoked("*");
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
    const now = Date.now();
    const hit = this.peek(userId);
    if (hit) return hit;
    const generation = this.generation;
    const seen = this.invalidations.get(userId) ?? 0;
    const state = await this.load(userId, requestId, timeoutMs);
    if (this.subscribed && generation === this.generation && (this.invalidations.get(userId) ?? 0) === seen && this.localTtlMs > 0) {
      if (this.local.size >= 100_000) this.local.clear();
      this.local.set(userId, { state, until: now + this.localTtlMs });
    }
    return state;
  }

  private async load(userId: string, requestId: string, timeoutMs: number): Promise<UserState> {
    let raw: string | null = null;
    try {
      raw = await this.redis.get(userStateKey(userId));
    } catch (e) {
      this.onError(e as Error);
    }
    const cached = raw === null ? undefined : parseUserState(raw);
    if (cached) return cached;
    const r = await this.peers
      .call<UserState>("user-management", `/internal/users/${encodeURIComponent(userId)}/state`, { requestId, timeoutMs: Math.min(timeoutMs, 5_000) })
      .catch(() => undefined);
    const state = r?.status === 200 ? parseUserState(JSON.stringify(r.body)) : undefined;
    if (!state) throw new HttpError(503, "AUTH_UNAVAILABLE", "Authentication temporarily unavailable", undefined, { "retry-after": "1" });
    return state;
  }
}
