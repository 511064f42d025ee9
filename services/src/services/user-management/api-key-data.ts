/**
 * user-management's SQL on `api_keys` (only each key's SHA-256 is stored; migrations 0100, 0201).
 * Functions take the pool or a transaction's client.
 */
import { cursorPage, type PostgresClient, type Queryable } from "../../kit";
import type { ApiKeyScope, Role } from "../../kit/identity";

export interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  scopes: ApiKeyScope[];
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

export interface LiveApiKeyRow {
  id: string;
  user_id: string;
  role: Role;
  key_hash: Buffer;
  scopes: ApiKeyScope[];
  expires_at: Date | null;
}

/**
 * A key that verifies (table alias `k`): not revoked, not expired. The one definition, used by
 * verification, by the look again after caching and by the per-user limit of active keys.
 */
const KEY_ACTIVE = "k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())";
/** An active key of an enabled owner (`u`: the key's user). */
const KEY_LIVE = `${KEY_ACTIVE} AND u.disabled_at IS NULL`;

/** Key space of the per-user API key lock (first half of the two-int advisory lock key; "ak"). */
const API_KEY_LOCK_SPACE = 0x616b;

export interface NewApiKey {
  userId: string;
  name: string;
  prefix: string;
  keyHash: Buffer;
  scopes: readonly ApiKeyScope[];
  expiresInDays: number;
}

/**
 * Stores a key unless the user already has `maxActive` active ones ("limit") or is no longer an
 * enabled user ("inactive-user"). One user's
 * creations take turns (an advisory lock held to the end of the transaction): counted in one
 * statement alone, concurrent requests each saw the rows before the others committed, and together
 * passed the limit. The expiry is PostgreSQL's clock, the one verification compares it with.
 */
export async function insertApiKey(
  pg: Pick<PostgresClient, "transaction">,
  k: NewApiKey,
  maxActive: number,
): Promise<{ id: string; created_at: Date; expires_at: Date } | "limit" | "inactive-user"> {
  return pg.transaction(async (c) => {
    // The user row is held (KEY SHARE: what the foreign key takes, so a deletion waits for this
    // transaction or is seen by it): a user deleted after the route's check would otherwise fail the
    // insert on the foreign key, a 500, and one disabled meanwhile would get a key.
    const user = await c.query("SELECT 1 FROM users WHERE id = $1 AND disabled_at IS NULL FOR KEY SHARE", [k.userId]);
    if (user.rowCount === 0) return "inactive-user";
    const r = await c.query<{ id: string; created_at: Date; expires_at: Date }>(
      `INSERT INTO api_keys (user_id, name, prefix, key_hash, scopes, expires_at)
       SELECT $1, $2, $3, $4, $5::text[], now() + make_interval(days => $6::int)
        WHERE (SELECT count(*) FROM api_keys k WHERE k.user_id = $1 AND ${KEY_ACTIVE}) < $7
       RETURNING id, created_at, expires_at`,
      [k.userId, k.name, k.prefix, k.keyHash, k.scopes, k.expiresInDays, maxActive],
    );
    return r.rows[0] ?? "limit";
  }, { lock: { space: API_KEY_LOCK_SPACE, key: k.userId } });
}

/**
 * The user's keys, newest first (revoked and expired ones too), at most `limit`, older than the key
 * `before` when given (undefined when it is not one of the user's keys: kit cursorPage). Ordered by (created_at, id), compared in SQL: the cursor's created_at keeps
 * its microseconds, which a JavaScript Date would lose.
 */
export async function listApiKeys(db: Queryable, userId: string, limit: number, before: string | null): Promise<ApiKeyRow[] | undefined> {
  return cursorPage<ApiKeyRow>(db, {
    cursor: "SELECT c.created_at, c.id FROM api_keys c WHERE c.id = $2::uuid AND c.user_id = $1",
    page: `SELECT k.id, k.name, k.prefix, k.scopes, k.created_at, k.expires_at, k.last_used_at, k.revoked_at FROM api_keys k
            WHERE k.user_id = $1 AND ($2::uuid IS NULL OR (k.created_at, k.id) < (SELECT * FROM before_row))`,
    order: "created_at DESC, id DESC",
    limit,
    values: [userId, before],
    given: before !== null,
  });
}

/** Revokes a key of the user (any user's for an admin); its hash, or undefined when there is none. */
export async function revokeApiKey(db: Queryable, id: string, userId: string, isAdmin: boolean): Promise<Buffer | undefined> {
  const r = await db.query<{ key_hash: Buffer }>(
    `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
      WHERE id = $1 AND (user_id = $2 OR $3) RETURNING key_hash`,
    [id, userId, isAdmin],
  );
  return r.rows[0]?.key_hash;
}

export async function apiKeyHashesOf(db: Queryable, userId: string): Promise<Buffer[]> {
  const r = await db.query<{ key_hash: Buffer }>("SELECT key_hash FROM api_keys WHERE user_id = $1", [userId]);
  return r.rows.map((k) => k.key_hash);
}

/** The live key with that prefix, for verification (read only: nothing is written before the hash matched). */
export async function findLiveApiKey(db: Queryable, prefix: string): Promise<LiveApiKeyRow | undefined> {
  const r = await db.query<LiveApiKeyRow>(
    `SELECT k.id, k.user_id, u.role, k.key_hash, k.scopes, k.expires_at FROM api_keys k JOIN users u ON u.id = k.user_id
      WHERE k.prefix = $1 AND ${KEY_LIVE}`,
    [prefix],
  );
  return r.rows[0];
}

/** Whether the key is still live (the condition of findLiveApiKey). */
export async function isApiKeyLive(db: Queryable, id: string): Promise<boolean> {
  const r = await db.query(`SELECT 1 FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = $1 AND ${KEY_LIVE}`, [id]);
  return (r.rowCount ?? 0) > 0;
}

/** Records a verified key's use (at most once a minute per key: verification is not a write path). */
export async function touchApiKey(db: Queryable, id: string): Promise<void> {
  await db.query("UPDATE api_keys SET last_used_at = now() WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')", [id]);
}
