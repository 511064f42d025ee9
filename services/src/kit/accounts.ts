/**
 * user-management's accounts (the `users` table) as other services read them: every service shares
 * one PostgreSQL database, and an account an admin deleted is a row gone, one disabled a row with
 * `disabled_at` set. Services keep a user id as text; the table's key is a uuid, and a cast of a
 * text that is not one fails the whole statement (22P02), so a text that is not a lower-case UUID
 * (the only spelling user-management issues) matches no account instead.
 */
export function accountKeyOf(userIdText: string): string {
  return `CASE WHEN ${userIdText} ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN (${userIdText})::uuid END`;
}
