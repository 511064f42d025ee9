/**
 * The confirmation codes' SQL (nt_preferences), one set of statements for every confirmable channel:
 * its address column and its `<channel>_verified_at`, `_code_hash`, `_code_expires_at`,
 * `_code_tries` (migrations 0411 for e-mail, 0420 for Telegram). Column names come from the fixed
 * table below, never from a request.
 */
import { lockAccountForWrite } from "../../kit/accounts";
import type { PostgresClient, Queryable } from "../../kit/datastores/postgres";
import type { Confirmable } from "./address-confirmation";

const ADDRESS_COLUMN: Record<Confirmable, string> = { email: "email", telegram: "telegram_chat_id" };

/**
 * The SET clauses of an upsert that make the channel's address unconfirmed (its code gone) when
 * `changed` (a parameter: true when the address changed) or when the new address (`address`) is null.
 */
export function resetWhenChanged(channel: Confirmable, changed: string, address: string): string {
  const when = `CASE WHEN ${changed} OR ${address} IS NULL THEN`;
  return [["verified_at", "NULL"], ["code_hash", "NULL"], ["code_expires_at", "NULL"], ["code_tries", "0"]]
    .map(([column, cleared]) => `${channel}_${column} = ${when} ${cleared} ELSE nt_preferences.${channel}_${column} END`)
    .join(",\n         ");
}

/**
 * Stores a new code for the user's current address (replacing any earlier one); false when the address
 * is no longer `address` or is confirmed; "account_deleted" when the account was deleted (read under its
 * lock, kit lockAccountForWrite: no code is stored, so none is sent, for a deleted account).
 */
export async function storeCode(pg: Pick<PostgresClient, "transaction">, channel: Confirmable, userId: string, address: string, hash: Buffer, ttlMs: number): Promise<boolean | "account_deleted"> {
  return pg.transaction(async (db) => {
    if ((await lockAccountForWrite(db, userId)) === "deleted") return "account_deleted";
    const r = await db.query(
      `UPDATE nt_preferences SET ${channel}_code_hash = $3, ${channel}_code_expires_at = now() + $4 * interval '1 millisecond', ${channel}_code_tries = 0
        WHERE user_id = $1 AND lower(${ADDRESS_COLUMN[channel]}) = lower($2) AND ${channel}_verified_at IS NULL`,
      [userId, address, hash, ttlMs],
    );
    return (r.rowCount ?? 0) > 0;
  });
}

export interface PendingCode { address: string | null; hash: Buffer | null; expired: boolean; tries: number; verified: boolean }

/**
 * The code awaiting confirmation, locked for the check (within the caller's transaction), after the
 * account's lock (kit lockAccountForWrite): "account_deleted" when the account was deleted (nothing
 * is confirmed for it).
 */
export async function lockCode(db: Queryable, channel: Confirmable, userId: string): Promise<PendingCode | undefined | "account_deleted"> {
  if ((await lockAccountForWrite(db, userId)) === "deleted") return "account_deleted";
  const r = await db.query<{ address: string | null; hash: Buffer | null; expired: boolean; tries: number; verified: boolean }>(
    `SELECT ${ADDRESS_COLUMN[channel]} AS address, ${channel}_code_hash AS hash, coalesce(${channel}_code_expires_at < now(), true) AS expired,
            ${channel}_code_tries AS tries, ${channel}_verified_at IS NOT NULL AS verified
       FROM nt_preferences WHERE user_id = $1 FOR UPDATE`,
    [userId],
  );
  return r.rows[0];
}

/** A right code: the address is confirmed and the code gone (single use). A wrong one: one try more, the code gone at `maxTries`. */
export async function recordCodeTry(db: Queryable, channel: Confirmable, userId: string, right: boolean, maxTries: number): Promise<void> {
  const c = channel;
  await db.query(
    right
      ? `UPDATE nt_preferences SET ${c}_verified_at = now(), ${c}_code_hash = NULL, ${c}_code_expires_at = NULL, ${c}_code_tries = 0 WHERE user_id = $1`
      : `UPDATE nt_preferences SET ${c}_code_tries = ${c}_code_tries + 1,
           ${c}_code_hash = CASE WHEN ${c}_code_tries + 1 >= $2 THEN NULL ELSE ${c}_code_hash END WHERE user_id = $1`,
    right ? [userId] : [userId, maxTries],
  );
}
