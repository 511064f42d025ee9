/**
 * user-management's data access: every SQL statement on `users` and `refresh_tokens` (`api_keys`:
 * ./api-key-data.ts; migrations in src/migrations/postgres). Functions take the pool or a transaction's client.
 */
import { deleteOlderThan, type PostgresClient, type Queryable } from "../../kit";
import type { Role } from "../../kit/identity";
import { recordUnpublishedRevocation } from "./session-revocations";
import { KILL_SWITCH_LOCK } from "../../trading/tradingState";

export interface UserRow {
  id: string;
  email: string;
  password_hash: string;
  role: Role;
  display_name: string | null;
  created_at: Date;
  disabled_at: Date | null;
  token_epoch: number;
  /** Raised by every change of the user's state (migration 0452); bigint, so node-postgres answers text. */
  state_version: string;
}

export interface RefreshTokenRow {
  id: string;
  user_id: string;
  family_id: string;
  expired: boolean;
  used_at: Date | null;
  revoked_at: Date | null;
}

// Users ------------------------------------------------------------------------------------------

export async function hasActiveAdmin(db: Queryable): Promise<boolean> {
  const r = await db.query("SELECT 1 FROM users WHERE role = 'admin' AND disabled_at IS NULL LIMIT 1");
  return (r.rowCount ?? 0) > 0;
}

/** The bootstrap admin as a new account, or undefined when the email is taken (./bootstrap.ts decides then). */
export async function insertAdmin(db: Queryable, email: string, passwordHash: string): Promise<UserRow | undefined> {
  const r = await db.query<UserRow>(
    `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, 'admin')
     ON CONFLICT (email) DO NOTHING RETURNING *`,
    [email, passwordHash],
  );
  return r.rows[0];
}

/**
 * Makes an account an active admin, only while its password hash is still `passwordHash` (the one
 * the caller checked): a password changed meanwhile promotes nothing. Its older tokens are refused
 * from then on (epoch raised with the role, as setUserRole does).
 */
export async function promoteToAdmin(db: Queryable, id: string, passwordHash: string): Promise<UserRow | undefined> {
  const r = await db.query<UserRow>(
    `UPDATE users SET role = 'admin', disabled_at = NULL, updated_at = now(), state_version = state_version + 1,
            token_epoch = CASE WHEN role = 'admin' THEN token_epoch ELSE token_epoch + 1 END
      WHERE id = $1 AND password_hash = $2 RETURNING *`,
    [id, passwordHash],
  );
  return r.rows[0];
}

/** The new user, or undefined when the email is taken. */
export async function insertUser(db: Queryable, email: string, passwordHash: string, displayName: string | null): Promise<UserRow | undefined> {
  const r = await db.query<UserRow>(
    `INSERT INTO users (email, password_hash, display_name) VALUES ($1, $2, $3)
     ON CONFLICT (email) DO NOTHING RETURNING *`,
    [email, passwordHash, displayName],
  );
  return r.rows[0];
}

/** Any user with that email, disabled ones included (login decides). */
export async function findUserByEmail(db: Queryable, email: string): Promise<UserRow | undefined> {
  return (await db.query<UserRow>("SELECT * FROM users WHERE email = $1", [email])).rows[0];
}

export async function findActiveUser(db: Queryable, id: string): Promise<UserRow | undefined> {
  return (await db.query<UserRow>("SELECT * FROM users WHERE id = $1 AND disabled_at IS NULL", [id])).rows[0];
}

/** Changes the role; tokens issued with the old one stop working (epoch raised). */
export async function setUserRole(db: Queryable, id: string, role: Role): Promise<UserRow | undefined> {
  return (
    await db.query<UserRow>(
      `UPDATE users SET role = $2, updated_at = now(), state_version = state_version + 1,
              token_epoch = CASE WHEN role = $2 THEN token_epoch ELSE token_epoch + 1 END
        WHERE id = $1 RETURNING *`,
      [id, role],
    )
  ).rows[0];
}

/** Any user by id, disabled ones included (state for the gateway, admin actions). */
export async function findUser(db: Queryable, id: string): Promise<UserRow | undefined> {
  return (await db.query<UserRow>("SELECT * FROM users WHERE id = $1", [id])).rows[0];
}

/**
 * Disables (or re-enables) an account; disabling revokes its tokens and sessions. Run in a
 * transaction (asActingAdmin's) and locking the user row first, as a refresh does
 * (lockUserOfRefreshToken): a session refreshed at the same moment is either refused or created
 * before the revocation, which then sees it.
 */
export async function setUserDisabled(c: Queryable, id: string, disabled: boolean): Promise<UserRow | undefined> {
  const r = await c.query<UserRow>(
    disabled
      ? `UPDATE users SET disabled_at = coalesce(disabled_at, now()), token_epoch = token_epoch + 1, state_version = state_version + 1, updated_at = now() WHERE id = $1 RETURNING *`
      : `UPDATE users SET disabled_at = NULL, state_version = state_version + 1, updated_at = now() WHERE id = $1 RETURNING *`,
    [id],
  );
  if (disabled && r.rows[0]) await c.query(`UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'admin' WHERE user_id = $1 AND revoked_at IS NULL`, [id]);
  return r.rows[0];
}

const ADMIN_CHANGES_LOCK = 0x61646d6e; // "admn": every account administration, one at a time

/**
 * Runs an admin's change of another account in one transaction, after every earlier one committed
 * and only while `adminId` is still an active admin ("not-admin" otherwise, nothing run). The
 * gateway let the request in as an admin, but two admins demoting, disabling or deleting each other
 * at once both passed (each refuses only its own account) and left the platform with no admin.
 * In turn, the second sees its caller is no admin any more; an active admin acting on another
 * account always leaves one (the caller).
 */
export async function asActingAdmin<T>(pg: Pick<PostgresClient, "transaction">, adminId: string, change: (c: Queryable) => Promise<T>): Promise<T | "not-admin"> {
  return pg.transaction(async (c) => {
    const caller = await c.query("SELECT 1 FROM users WHERE id = $1 AND role = 'admin' AND disabled_at IS NULL", [adminId]);
    return caller.rowCount === 0 ? "not-admin" : change(c);
  }, { lock: ADMIN_CHANGES_LOCK });
}

/**
 * Sets a new password if the stored one is still `verifiedHash` (the one the current password was
 * checked against): of two concurrent changes with the same current password only the first is
 * made, where both used to answer 200 and the second silently replace the first. Every session and
 * access token issued so far is revoked with the old password (a leaked password changed is a leaked
 * session ended), locking the user row first (see setUserDisabled); `withinChange` then runs in the
 * same transaction (the new session: issued after the commit, a logout-all committed in between
 * refused it, and the change, made, answered 401). "changed" when another change came first,
 * undefined for an unknown or disabled user.
 */
export async function changePassword<T>(
  pg: Pick<PostgresClient, "transaction">,
  userId: string,
  passwordHash: string,
  verifiedHash: string,
  withinChange: (c: Queryable, user: UserRow) => Promise<T>,
): Promise<{ user: UserRow; result: T } | "changed" | undefined> {
  return pg.transaction(async (c) => {
    const user = (
      await c.query<UserRow>(
        "UPDATE users SET password_hash = $2, token_epoch = token_epoch + 1, state_version = state_version + 1, updated_at = now() WHERE id = $1 AND disabled_at IS NULL AND password_hash = $3 RETURNING *",
        [userId, passwordHash, verifiedHash],
      )
    ).rows[0];
    if (!user) {
      const still = await c.query<{ id: string }>("SELECT id FROM users WHERE id = $1 AND disabled_at IS NULL", [userId]);
      return still.rows.length > 0 ? "changed" : undefined;
    }
    await c.query(`UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'logout_all' WHERE user_id = $1 AND revoked_at IS NULL`, [userId]);
    return { user, result: await withinChange(c, user) };
  });
}

/**
 * "Log out everywhere": raises the token epoch (every access token issued so far stops working) and
 * revokes every session, in one transaction that locks the user row first (see setUserDisabled).
 */
export async function revokeEverything(pg: Pick<PostgresClient, "transaction">, userId: string): Promise<UserRow | undefined> {
  return pg.transaction(async (c) => {
    const user = (await c.query<UserRow>("UPDATE users SET token_epoch = token_epoch + 1, state_version = state_version + 1, updated_at = now() WHERE id = $1 RETURNING *", [userId])).rows[0];
    await c.query(`UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'logout_all' WHERE user_id = $1 AND revoked_at IS NULL`, [userId]);
    return user;
  });
}

/**
 * Deletes an account (its sessions and API keys go with it: ON DELETE CASCADE) and leaves its tombstone (deleted_users) in the same statement: order-management
 * refuses the account's new orders and cancels its open ones by that durable mark (a missed
 * `auth:user-changes` message or a restart would lose a notification).
 */
export async function deleteUser(db: Queryable, id: string): Promise<boolean> {
  // The kill switch's lock, exclusively (as risk-analyzer's halts): a trading-engine batch that read
  // no tombstone for the account commits before this does, and every later one reads it, so no fill
  // of the account's orders comes after the deletion answered (trading-engine/halts.ts).
  const r = await db.query(
    `WITH locked AS (SELECT pg_advisory_xact_lock($2, $3)),
          gone AS (DELETE FROM users WHERE id = $1 AND EXISTS (SELECT 1 FROM locked) RETURNING id),
          marked AS (INSERT INTO deleted_users (user_id) SELECT id::text FROM gone ON CONFLICT (user_id) DO NOTHING)
     SELECT id FROM gone`,
    [id, KILL_SWITCH_LOCK.space, KILL_SWITCH_LOCK.key],
  );
  return (r.rowCount ?? 0) > 0;
}

// Refresh tokens (only their SHA-256 is stored) ---------------------------------------------------

/**
 * Stores a refresh token of `userId` if the account is still enabled at `epoch`, the token epoch it
 * was checked at; false (nothing stored) when it moved since (password changed, logged out
 * everywhere, role changed, disabled). The user row is locked FOR SHARE, so a change that ends
 * every session either waits for this insert (then revokes the token) or commits first (then this
 * finds the new epoch): a login whose password check ran before a password change, and whose insert
 * came after it, left a session of the old password nobody could revoke but a second change.
 */
export async function insertRefreshToken(db: Queryable, userId: string, epoch: number, familyId: string, tokenHash: Buffer, ttlSeconds: number): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at)
     SELECT id, $3, $4, now() + make_interval(secs => $5) FROM users
      WHERE id = $1 AND token_epoch = $2 AND disabled_at IS NULL FOR SHARE`,
    [userId, epoch, familyId, tokenHash, ttlSeconds],
  );
  return (r.rowCount ?? 0) > 0;
}

/**
 * The (enabled or disabled) owner of a refresh token, its row locked FOR SHARE until the end of the
 * transaction. A refresh takes it before the token's row: the order in which logout-all and disable
 * lock (the user, then the tokens), so they never deadlock, and a revocation of every session either
 * waits for the refresh (then sees the new token) or finishes first (then the refresh sees its token
 * revoked). Before this lock, a session refreshed during "log out everywhere" survived it.
 */
export async function lockUserOfRefreshToken(db: Queryable, tokenHash: Buffer): Promise<UserRow | undefined> {
  return (await db.query<UserRow>("SELECT * FROM users WHERE id = (SELECT user_id FROM refresh_tokens WHERE token_hash = $1) FOR SHARE", [tokenHash])).rows[0];
}

/** The token row, locked for the rest of the transaction. */
export async function lockRefreshToken(db: Queryable, tokenHash: Buffer): Promise<RefreshTokenRow | undefined> {
  const r = await db.query<RefreshTokenRow>(
    `SELECT id, user_id, family_id, expires_at < now() AS expired, used_at, revoked_at
       FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`,
    [tokenHash],
  );
  return r.rows[0];
}

export async function markRefreshTokenUsed(db: Queryable, id: string): Promise<void> {
  await db.query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1", [id]);
}

/** Revokes a whole session family after a rotated token came back; the gateways are owed it (./session-revocations.ts). */
export async function revokeFamilyOnReuse(db: Queryable, familyId: string): Promise<void> {
  await db.query(`UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'reuse' WHERE family_id = $1 AND revoked_at IS NULL`, [familyId]);
  await recordUnpublishedRevocation(db, familyId);
}

/**
 * Revokes the session (token family) of one of the user's refresh tokens, locking the user row first
 * (FOR NO KEY UPDATE: a refresh holds it FOR SHARE, see lockUserOfRefreshToken) and revoking in a
 * statement of its own, so a refresh at the same moment either commits its successor token first (then
 * revoked too) or waits and finds its token revoked. Before, a refresh that had locked the presented
 * token committed a successor the revoking statement could not see: that session survived the logout.
 * Answers the session's family id (revoked now or before: a retried logout tells the gateways again;
 * owed to them until told, ./session-revocations.ts),
 * undefined when the token is not one of the user's.
 */
export async function revokeSessionOf(pg: Pick<PostgresClient, "transaction">, userId: string, tokenHash: Buffer): Promise<string | undefined> {
  return pg.transaction(async (c) => {
    await c.query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", [userId]);
    const family = (await c.query<{ family_id: string }>("SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2", [tokenHash, userId])).rows[0]?.family_id;
    if (family === undefined) return undefined;
    await c.query(`UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'logout' WHERE revoked_at IS NULL AND user_id = $2 AND family_id = $1`, [family, userId]);
    await recordUnpublishedRevocation(c, family);
    return family;
  });
}

/**
 * Deletes at most `batch` refresh tokens that expired more than `afterSeconds` ago, oldest first
 * (rows another transaction holds are skipped); answers how many. Until then a used one presented
 * again still revokes its family (reuse); after, it is an unknown token (401 either way).
 */
export function deleteExpiredRefreshTokens(db: Queryable, afterSeconds: number, batch: number): Promise<number> {
  return deleteOlderThan(db, { table: "refresh_tokens", key: "id", at: "expires_at" }, { seconds: afterSeconds }, batch);
}
