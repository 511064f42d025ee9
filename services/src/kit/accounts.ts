/**
 * user-management's accounts (the `users` table) as other services read them: every service shares
 * one PostgreSQL database, and an account an admin deleted is a row gone, one disabled a row with
 * `disabled_at` set. Services keep a user id as text; the table's key is a uuid, and a cast of a
 * text that is not one fails the whole statement (22P02), so a text that is not a lower-case UUID
 * (the only spelling user-management issues) matches no account instead.
 */
import type { Queryable } from "./datastores/postgres";
import { HttpError } from "./errors";

/** SQL of the `users` key of a text user id column or parameter (NULL when it is no lower-case UUID). */
export function accountKeyOf(userIdText: string): string {
  return `CASE WHEN ${userIdText} ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN (${userIdText})::uuid END`;
}

/**
 * Whether user-management deleted this account: its tombstone (`deleted_users`, written by the
 * deleting statement and kept). Read by services whose requests can still be under way when the
 * account goes (they passed the gateway before it): such a request is refused, not carried out for
 * an account nobody can see any more.
 */
export async function accountWasDeleted(q: Queryable, userId: string): Promise<boolean> {
  return ((await q.query("SELECT 1 FROM deleted_users WHERE user_id = $1", [userId])).rowCount ?? 0) > 0;
}

/** The answer to a request of an account deleted while it was under way: 403 ACCOUNT_DELETED naming userId; `does` says what it no longer does. */
export const accountDeleted = (userId: string, does: string) => new HttpError(403, "ACCOUNT_DELETED", `account ${userId} was deleted; ${does}`, "userId");
