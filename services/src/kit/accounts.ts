/**
 * user-management's accounts (the `users` table) as other services read them: every service shares
 * one PostgreSQL database, and an account an admin deleted is a row gone, one disabled a row with
 * `disabled_at` set. Services keep a user id as text; the table's key is a uuid, and a cast of a
 * text that is not one fails the whole statement (22P02), so a text that is not a lower-case UUID
 * (the only spelling user-management issues) matches no account instead.
 *
 * A write of an account's data takes the account's lock in its own transaction (lockAccountForWrite,
 * or lockAccountsStatements in a transaction's first round trip): the
 * account's `users` row FOR KEY SHARE, the lock a deletion's DELETE conflicts with, then its
 * tombstone. A deletion then either waits for the write to commit (and the account's data written
 * before its answer is treated as all of it is: its orders cancelled, its subscription ended, its
 * strategies stopped) or commits first, and the write, having waited for the row, finds it gone and
 * the tombstone there. Only a deletion takes a lock that conflicts with KEY SHARE (user-management's
 * updates of the row are NO KEY UPDATEs), and a deletion holds no lock a writer waits for (the admin
 * changes' lock, the kill switch's, the row and its tombstone), so the lock may come after a
 * service's own per-user locks without a deadlock.
 */
import { executeStatement, textArrayLiteral, type PreparedStatement, type Queryable } from "./datastores/postgres";
import { HttpError } from "./errors";

/** SQL of the `users` key of a text user id column or parameter (NULL when it is no lower-case UUID). */
export function accountKeyOf(userIdText: string): string {
  return `CASE WHEN ${userIdText} ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN (${userIdText})::uuid END`;
}

/** The accounts' rows, of `ids` (SQL of a text[]), locked FOR KEY SHARE to the end of the transaction (by the primary key). */
const lockRowsSql = (ids: string) => `SELECT id FROM users WHERE id = ANY(ARRAY(SELECT ${accountKeyOf("u")} FROM unnest(${ids}) AS u)) FOR KEY SHARE`;

/** The tombstones of `ids` (SQL of a text[]). */
const tombstonesSql = (ids: string) => `SELECT user_id FROM deleted_users WHERE user_id = ANY(${ids})`;

/**
 * Whether user-management deleted this account: its tombstone (`deleted_users`, written by the
 * deleting statement and kept). A plain read: a check before a call elsewhere (a card processor),
 * not the one a write relies on (lockAccountForWrite).
 */
export async function accountWasDeleted(q: Queryable, userId: string): Promise<boolean> {
  return ((await q.query(tombstonesSql("ARRAY[$1::text]"), [userId])).rowCount ?? 0) > 0;
}

/**
 * Takes the account's lock for a write of its data in the transaction `tx` (see above): "deleted"
 * when the account was deleted (write nothing), "live" when its row, if it has one, is locked to the
 * end of `tx`, so its deletion comes after this transaction. One statement (an indexed row lock and
 * a primary-key probe of deleted_users); a second only when no row was locked: an id that never had
 * one, or a deletion that committed while this waited for the row (its tombstone is newer than the
 * first statement's snapshot, so it is read again). Must run inside a transaction: on the pool the
 * lock would end with the statement.
 */
export async function lockAccountForWrite(tx: Queryable, userId: string): Promise<"live" | "deleted"> {
  const { rows } = await tx.query<{ held: boolean; deleted: boolean }>(
    `WITH held AS (${lockRowsSql("ARRAY[$1::text]")}) SELECT EXISTS (SELECT 1 FROM held) AS held, EXISTS (${tombstonesSql("ARRAY[$1::text]")}) AS deleted`,
    [userId],
  );
  if (rows[0].deleted) return "deleted";
  if (rows[0].held) return "live";
  return (await accountWasDeleted(tx, userId)) ? "deleted" : "live";
}

/**
 * lockAccountForWrite for many accounts in a transaction's first round trip, as statements sent
 * without parameters after BEGIN (EXECUTEs of ACCOUNT_LOCKS, which the transaction must have among its
 * `prepared`): the rows' lock, then (a statement of its own, so read after the lock was granted) their
 * tombstones. Parse the second one's rows with deletedAccountsOf.
 */
export function lockAccountsStatements(userIds: string[]): [lock: string, tombstones: string] {
  const ids = [textArrayLiteral(userIds)];
  return [executeStatement(ACCOUNT_LOCKS[0], ids), executeStatement(ACCOUNT_LOCKS[1], ids)];
}

/** lockAccountsStatements' statements, prepared on the connection (`PostgresClient.transaction`'s `prepared`). */
export const ACCOUNT_LOCKS: readonly [PreparedStatement, PreparedStatement] = [
  { name: "accounts_lock", params: ["text[]"], text: lockRowsSql("$1") },
  { name: "accounts_tombstones", params: ["text[]"], text: tombstonesSql("$1") },
];

/** The deleted accounts among the rows of lockAccountsStatements' second statement. */
export function deletedAccountsOf(rows: unknown[] | undefined): Set<string> {
  return new Set((rows ?? []).map((r) => (r as { user_id: string }).user_id));
}

/** The answer to a request of an account deleted while it was under way: 403 ACCOUNT_DELETED naming userId; `does` says what it no longer does. */
export const accountDeleted = (userId: string, does: string) => new HttpError(403, "ACCOUNT_DELETED", `account ${userId} was deleted; ${does}`, "userId");
