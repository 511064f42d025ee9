/**
 * What the gateway must know about a user on every request, and how a change reaches it within a
 * second: revocation of access tokens and API keys.
 *
 * - PostgreSQL is the source of truth: `users.disabled_at`, `users.role`, `users.token_epoch`
 *   (raised by logout everywhere, a role change and disabling); a deleted user has no row.
 *   `users.state_version` (migration 0452) is raised by every statement that changes any of them,
 *   under the row's lock, so it follows commit order; a deletion's state has version
 *   Number.MAX_SAFE_INTEGER, above every other.
 * - Dragonfly caches it under `auth:user-state:<id>` -> {status, role, epoch, version} (TTL below), its
 *   version also under `auth:user-state-version:<id>` (since session 42; see "Rolling deploys" below
 *   for the key of earlier releases). A writer in user-management writes the new state
 *   after its transaction commits, then PUBLISHes `user:<id>` on `auth:user-changes` (a revoked API
 *   key: its cache entry deleted, then `apikey:<sha256>`). Writers and readers filling a miss write
 *   through one script (WRITE_STATE) that never replaces a higher version with a lower one (a filler
 *   not even an equal one, as its NX did): two changes committed close together may reach Dragonfly
 *   in the other order, and a plain SET left the older state there for the entry's hour (found by
 *   session 40's race hunt: a password change writing after the logout-all that followed it gave the
 *   ended tokens back; a disable written after the enable that followed it left the account disabled,
 *   and epochs cannot order those: an enable does not raise one). An entry of a previous release (no version) counts as version 0.
 * - The gateway keeps a small in-process copy, drops an entry when its id is published, and drops
 *   everything whenever its subscription is not live (pub/sub is at-most-once), reading Dragonfly
 *   directly until it is subscribed again. A token is refused when the user is not active, when
 *   its epoch is older than the user's, or when its role is not the user's current one.
 * - Rolling deploys (session 42). Releases before session 42 read and write `auth:user:<id>` (the
 *   legacy entry; before session 41 with a plain SET, no version, and without raising state_version,
 *   so an old replica's late write replaced a newer state). This release never writes it: a writer
 *   deletes it unless it is ahead of the state written (an old replica's change committed after this
 *   one), so an old gateway misses and asks user-management. The gateway reads both entries in one
 *   MGET and takes the versioned one unless the legacy entry is ahead of it or there is no versioned
 *   one: then it asks user-management (PostgreSQL). "Ahead" needs no version: states follow commit
 *   order by (token epoch, status), since every change but an enable raises the epoch and an enable
 *   only turns disabled to active (stateIsAhead). Migration 0458 raises state_version on an old
 *   replica's change too, so the miss it causes is filled over the stale entry.
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
  /** users.state_version when read (0: an entry written before versions, by a previous release). */
  version: number;
}

export const USER_STATE_TTL_S = 3_600;
export const USER_CHANGES_CHANNEL = "auth:user-changes";
export const userStateKey = (userId: string) => `auth:user-state:${userId}`;
export const userStateVersionKey = (userId: string) => `auth:user-state-version:${userId}`;
/** What releases before session 42 read and write (session 41 with its version key); this one only deletes it. */
export const legacyUserStateKey = (userId: string) => `auth:user:${userId}`;
export const legacyUserStateVersionKey = (userId: string) => `auth:user-version:${userId}`;
const DELETED_VERSION = Number.MAX_SAFE_INTEGER;

/** The state of a user row (undefined: deleted). */
export function userStateOf(row: { role: Role; disabled_at: Date | null; token_epoch: number; state_version: string | number } | undefined): UserState {
  if (!row) return { status: "deleted", role: "trader", epoch: Number.MAX_SAFE_INTEGER, version: DELETED_VERSION };
  return { status: row.disabled_at ? "disabled" : "active", role: row.role, epoch: row.token_epoch, version: Number(row.state_version) };
}

export function parseUserState(raw: string): UserState | undefined {
  try {
    const v = JSON.parse(raw) as Partial<UserState>;
    const version = v.version === undefined ? 0 : v.version; // written by a release before versions
    if ((v.status === "active" || v.status === "disabled" || v.status === "deleted") && (v.role === "trader" || v.role === "admin") && typeof v.epoch === "number" && typeof version === "number")
      return { status: v.status, role: v.role, epoch: v.epoch, version };
  } catch {
    /* fall through */
  }
  return undefined;
}

/** At one token epoch a state can only go from disabled to active (an enable); a deletion ends it all. */
const STATUS_ORDER: Record<UserStatus, number> = { disabled: 0, active: 1, deleted: 2 };

/**
 * Whether `a` was surely committed after `b`: a later epoch, or the same epoch and a later status.
 * Every change but an enable (and a promotion of a disabled admin, the same thing) raises the token
 * epoch, so two states of one user with the same epoch and status are the same state.
 */
export function stateIsAhead(a: Pick<UserState, "status" | "epoch">, b: Pick<UserState, "status" | "epoch">): boolean {
  return a.epoch > b.epoch || (a.epoch === b.epoch && STATUS_ORDER[a.status] > STATUS_ORDER[b.status]);
}

/**
 * The state a gateway may use from what Dragonfly holds (the versioned entry, the legacy one), or
 * undefined when only user-management can tell: no versioned entry, or a legacy entry (an old
 * replica's) that is ahead of it or unreadable.
 */
export function cachedUserState(raw: string | null, legacyRaw: string | null): UserState | undefined {
  const state = raw === null ? undefined : parseUserState(raw);
  if (!state || legacyRaw === null) return state;
  const legacy = parseUserState(legacyRaw);
  return legacy && !stateIsAhead(legacy, state) ? state : undefined;
}

/** Why a credential of this user is refused now, or undefined when it is still good. */
export function revocationReason(state: UserState, presented: { role: Role; epoch?: number }): string | undefined {
  if (state.status !== "active") return state.status === "deleted" ? "account deleted" : "account disabled";
  if (presented.epoch !== undefined && presented.epoch < state.epoch) return "token revoked";
  if (presented.role !== state.role) return "role changed";
  return undefined;
}

/**
 * Writes a state unless Dragonfly holds a newer one, atomically. KEYS: the state, its version, the
 * legacy state, its version; ARGV: state JSON, version, TTL in seconds, "fill" (a miss filled: not
 * over an equal version either) or "set", the state's epoch and STATUS_ORDER. The stored version is
 * the version key's while the state exists (none: 0), else -1. The state is set before the version,
 * with the same TTL, so the version never expires first. A "set" (a change committed) deletes the
 * legacy entry unless it is ahead of this state (stateIsAhead, on its epoch and status read with
 * string.match: the releases that write it write JSON.stringify({status, role, epoch, ...})), so an
 * old gateway asks user-management; a fill leaves it (its read of PostgreSQL may predate an old
 * replica's change). No cjson. Dragonfly runs Lua scripts (5.4) atomically and compatibly with
 * Redis, provided every key they touch is passed in KEYS, as here
 * (https://dragonflydb.io/docs/managing-dragonfly/scripting,
 * https://dragonflydb.io/docs/command-reference/generic/eval); central-hub's locks use EVAL alike.
 */
const WRITE_STATE = `
if ARGV[4] == 'set' then
  local legacy = redis.call('GET', KEYS[3])
  if legacy then
    local order = { disabled = 0, active = 1, deleted = 2 }
    local epoch = tonumber(string.match(legacy, '"epoch":(%-?%d+)[,}]'))
    local status = order[string.match(legacy, '"status":"(%a+)"') or '']
    local mine, myStatus = tonumber(ARGV[5]), tonumber(ARGV[6])
    local ahead = epoch ~= nil and status ~= nil and (epoch > mine or (epoch == mine and status > myStatus))
    if not ahead then redis.call('DEL', KEYS[3], KEYS[4]) end
  end
end
local stored = -1
if redis.call('EXISTS', KEYS[1]) == 1 then stored = tonumber(redis.call('GET', KEYS[2]) or '0') or 0 end
local version = tonumber(ARGV[2])
if version < stored or (ARGV[4] == 'fill' and version == stored) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1`;

/** Whether the state was written (false: Dragonfly holds a newer one, or an equal one for a filler). */
async function writeUserState(redis: Redis, userId: string, state: UserState, mode: "set" | "fill"): Promise<boolean> {
  const keys = [userStateKey(userId), userStateVersionKey(userId), legacyUserStateKey(userId), legacyUserStateVersionKey(userId)];
  const written = await redis.eval(WRITE_STATE, keys.length, ...keys, JSON.stringify(state), String(state.version), String(USER_STATE_TTL_S), mode, String(state.epoch), String(STATUS_ORDER[state.status]));
  return written === 1;
}

/** After a committed change: the new state for every reader (unless a later change's is there already), then the notification. */
export async function publishUserState(redis: Redis, userId: string, state: UserState): Promise<void> {
  await writeUserState(redis, userId, state, "set");
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

/** A miss filled from PostgreSQL: never overwrites a state a writer set meanwhile (an equal or higher version). */
export async function fillUserState(redis: Redis, userId: string, state: UserState): Promise<void> {
  await writeUserState(redis, userId, state, "fill");
}
