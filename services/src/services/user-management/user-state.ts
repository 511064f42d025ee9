/**
 * What the gateway must know about a user on every request, and how a change reaches it within a
 * second: revocation of access tokens and API keys.
 *
 * - PostgreSQL is the source of truth: `users.disabled_at`, `users.role`, `users.token_epoch`
 *   (raised by logout everywhere, a role change and disabling); a deleted user has no row.
 * - Dragonfly caches it under `auth:user:<id>` -> {status, role, epoch} (TTL below). A writer in
 *   user-management SETs the new state after its transaction commits, then PUBLISHes `user:<id>`
 *   on `auth:user-changes` (a revoked API key: its cache entry deleted, then `apikey:<sha256>`). A reader filling a miss writes with NX, so a load that read PostgreSQL
 *   before the change committed cannot overwrite the new state.
 * - The gateway keeps a small in-process copy, drops an entry when its id is published, and drops
 *   everything whenever its subscription is not live (pub/sub is at-most-once), reading Dragonfly
 *   directly until it is subscribed again. A token is refused when the user is not active, when
 *   its epoch is older than the user's, or when its role is not the user's current one.
 * - One session ended (its logout, or its refresh-token family revoked on reuse) is not a user
 *   change: user-management SETs `auth:session-revoked:<family id>` for as long as an access token
 *   of that session can live, then PUBLISHes `session:<family id>`; the gateway refuses access
 *   tokens whose `sid` is that family (api-gateway/revoked-sessions.ts).
 */
import type { Redis } from "ioredis";
import type { Role } from "../../kit/identity";

export type UserStatus = "active" | "disabled" | "deleted";

export interface UserState {
  status: UserStatus;
  role: Role;
  epoch: number;
}

export const USER_STATE_TTL_S = 3_600;
export const USER_CHANGES_CHANNEL = "auth:user-changes";
export const userStateKey = (userId: string) => `auth:user:${userId}`;

/** The state of a user row (undefined: deleted). */
export function userStateOf(row: { role: Role; disabled_at: Date | null; token_epoch: number } | undefined): UserState {
  if (!row) return { status: "deleted", role: "trader", epoch: Number.MAX_SAFE_INTEGER };
  return { status: row.disabled_at ? "disabled" : "active", role: row.role, epoch: row.token_epoch };
}

export function parseUserState(raw: string): UserState | undefined {
  try {
    const v = JSON.parse(raw) as Partial<UserState>;
    if ((v.status === "active" || v.status === "disabled" || v.status === "deleted") && (v.role === "trader" || v.role === "admin") && typeof v.epoch === "number") return { status: v.status, role: v.role, epoch: v.epoch };
  } catch {
    /* fall through */
  }
  return undefined;
}

/** Why a credential of this user is refused now, or undefined when it is still good. */
export function revocationReason(state: UserState, presented: { role: Role; epoch?: number }): string | undefined {
  if (state.status !== "active") return state.status === "deleted" ? "account deleted" : "account disabled";
  if (presented.epoch !== undefined && presented.epoch < state.epoch) return "token revoked";
  if (presented.role !== state.role) return "role changed";
  return undefined;
}

/** After a committed change: the new state for every reader, then the notification. */
export async function publishUserState(redis: Redis, userId: string, state: UserState): Promise<void> {
  await redis.set(userStateKey(userId), JSON.stringify(state), "EX", USER_STATE_TTL_S);
  await redis.publish(USER_CHANGES_CHANNEL, userChangeMessage(userId));
}

/** Messages on USER_CHANGES_CHANNEL: `user:<id>` (state changed), `apikey:<sha256 hex>` (key revoked) or `session:<family id>` (session ended). */
export const userChangeMessage = (userId: string) => `user:${userId}`;
export const apiKeyChangeMessage = (hashHex: string) => `apikey:${hashHex}`;
export const sessionRevokedMessage = (familyId: string) => `session:${familyId}`;

/**
 * How long a session's revocation is kept: the longest an access token of it can still be accepted
 * (ACCESS_TOKEN_TTL_S at most 3600, whatever it was when the token was issued, plus the 5 s of clock
 * skew the gateway allows, rounded up). After that every token of the session has expired anyway,
 * so the set of revoked sessions stays bounded by the sessions ended in the last hour.
 */
export const SESSION_REVOCATION_TTL_S = 3_660;
export const revokedSessionKey = (familyId: string) => `auth:session-revoked:${familyId}`;

/** After a session's revocation committed: recorded for every reader, then the notification. */
export async function publishSessionRevoked(redis: Redis, familyId: string): Promise<void> {
  await redis.set(revokedSessionKey(familyId), "1", "EX", SESSION_REVOCATION_TTL_S);
  await redis.publish(USER_CHANGES_CHANNEL, sessionRevokedMessage(familyId));
}

/** A miss filled from PostgreSQL: never overwrites a state a writer set meanwhile. */
export async function fillUserState(redis: Redis, userId: string, state: UserState): Promise<void> {
  await redis.set(userStateKey(userId), JSON.stringify(state), "EX", USER_STATE_TTL_S, "NX");
}
