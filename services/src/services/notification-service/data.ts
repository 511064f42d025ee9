/** notification-service data access (PostgreSQL nt_*). */
import type { PostgresClient, Queryable } from "../../kit/datastores/postgres";
import { canonicalTimeZone, type Category, type Channel, type Notice, type QuietHours } from "./domain";
import { accountKeyOf, lockAccountForWrite } from "../../kit/accounts";
import { canonicalAddress, type Confirmable } from "./address-confirmation";
import { resetWhenChanged } from "./confirmation-data";

export interface Preferences {
  email: string | null;
  /** The address's owner entered the code sent to it (address-confirmation.ts): notices go to it only then. */
  emailVerified: boolean;
  telegramChatId: string | null;
  /** The chat's owner entered the code the bot posted there (address-confirmation.ts): notices go to it only then. */
  telegramVerified: boolean;
  timeZone: string;
  quietHours: QuietHours | null;
  channels: Partial<Record<Category, Channel[]>> | null;
}

/**
 * Whether the user has an account: user-management's users row, by primary key (a user id is a
 * lower-case UUID, as ai-orchestrator's store reads it), absent once an admin deleted it.
 */
export async function accountExists(db: Queryable, userId: string): Promise<boolean> {
  const sql = `SELECT 1 FROM users WHERE id = ${accountKeyOf("$1::text")}`;
  return ((await db.query(sql, [userId])).rowCount ?? 0) > 0;
}

export const DEFAULT_PREFERENCES: Preferences = { email: null, emailVerified: false, telegramChatId: null, telegramVerified: false, timeZone: "UTC", quietHours: null, channels: null };

interface PrefRow { email: string | null; email_verified_at: Date | null; telegram_chat_id: string | null; telegram_verified_at: Date | null; time_zone: string; quiet_start: string | null; quiet_end: string | null; channels: Preferences["channels"] }

export async function preferences(db: Queryable, userId: string): Promise<Preferences> {
  const r = (await db.query<PrefRow>("SELECT * FROM nt_preferences WHERE user_id = $1", [userId])).rows[0];
  if (!r) return DEFAULT_PREFERENCES;
  return { email: r.email, emailVerified: r.email !== null && r.email_verified_at !== null, telegramChatId: r.telegram_chat_id, telegramVerified: r.telegram_chat_id !== null && r.telegram_verified_at !== null, timeZone: canonicalTimeZone(r.time_zone) ?? r.time_zone, quietHours: r.quiet_start && r.quiet_end ? { start: r.quiet_start, end: r.quiet_end } : null, channels: r.channels };
}

/**
 * Saves the preferences; a new or changed e-mail address or chat id is unconfirmed (its code, if
 * any, gone; "007" after "7" is the same chat). Answers, per channel, whether the address changed (a
 * code is then due) and whether it is confirmed; "account_deleted" (nothing saved) when the account
 * was deleted (read under its lock: kit lockAccountForWrite, as every write of an account's data).
 */
export async function savePreferences(pg: Pick<PostgresClient, "transaction">, userId: string, p: Omit<Preferences, "emailVerified" | "telegramVerified">): Promise<Record<Confirmable, { changed: boolean; verified: boolean }> | "account_deleted"> {
  return pg.transaction(async (c) => {
    if ((await lockAccountForWrite(c, userId)) === "deleted") return "account_deleted";
    const old = (await c.query<{ email: string | null; email_verified_at: Date | null; telegram_chat_id: string | null; telegram_verified_at: Date | null }>(
      "SELECT email, email_verified_at, telegram_chat_id, telegram_verified_at FROM nt_preferences WHERE user_id = $1 FOR UPDATE", [userId])).rows[0];
    const outcome = (channel: Confirmable, before: string | null | undefined, after: string | null, verifiedAt: Date | null | undefined) => {
      const changed = after !== null && (before == null || canonicalAddress(channel, before) !== canonicalAddress(channel, after));
      return { changed, verified: after !== null && !changed && verifiedAt != null };
    };
    const saved = { email: outcome("email", old?.email, p.email, old?.email_verified_at), telegram: outcome("telegram", old?.telegram_chat_id, p.telegramChatId, old?.telegram_verified_at) };
    await c.query(
      `INSERT INTO nt_preferences (user_id, email, telegram_chat_id, time_zone, quiet_start, quiet_end, channels, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, now())
       ON CONFLICT (user_id) DO UPDATE SET email = $2, telegram_chat_id = $3, time_zone = $4, quiet_start = $5, quiet_end = $6, channels = $7, updated_at = now(),
         ${resetWhenChanged("email", "$8", "$2")},
         ${resetWhenChanged("telegram", "$9", "$3")}`,
      [userId, p.email, p.telegramChatId, p.timeZone, p.quietHours?.start ?? null, p.quietHours?.end ?? null, p.channels === null ? null : JSON.stringify(p.channels), saved.email.changed, saved.telegram.changed],
    );
    return saved;
  });
}

export interface Webhook { id: string; url: string; createdAt: string }
export interface WebhookWithSecret extends Webhook { secret: string; userId: string }

export async function webhooks(db: Queryable, userId: string): Promise<Webhook[]> {
  const { rows } = await db.query<{ webhook_id: string; url: string; created_at: Date }>("SELECT webhook_id, url, created_at FROM nt_webhooks WHERE user_id = $1 ORDER BY created_at", [userId]);
  return rows.map((r) => ({ id: r.webhook_id, url: r.url, createdAt: r.created_at.toISOString() }));
}

export async function webhookById(db: Queryable, id: string): Promise<WebhookWithSecret | undefined> {
  const r = (await db.query<{ webhook_id: string; user_id: string; url: string; secret: string; created_at: Date }>("SELECT * FROM nt_webhooks WHERE webhook_id = $1", [id])).rows[0];
  return r && { id: r.webhook_id, userId: r.user_id, url: r.url, secret: r.secret, createdAt: r.created_at.toISOString() };
}

/** Key space of the per-user webhook lock (first half of the two-int advisory lock key; "nw"). */
const WEBHOOK_LOCK_SPACE = 0x6e77;

/**
 * Adds an endpoint unless the user already has `max` ("full") or the account was deleted (read under
 * its lock: kit lockAccountForWrite). One user's additions take turns (an advisory lock held to the
 * end of the transaction): counted in one statement alone, concurrent requests each saw the rows
 * before the others committed, and together passed the limit.
 */
export async function insertWebhook(pg: Pick<PostgresClient, "transaction">, w: { id: string; userId: string; url: string; secret: string }, max: number): Promise<"created" | "full" | "account_deleted"> {
  return pg.transaction(async (c) => {
    if ((await lockAccountForWrite(c, w.userId)) === "deleted") return "account_deleted";
    const r = await c.query(
      `INSERT INTO nt_webhooks (webhook_id, user_id, url, secret) SELECT $1, $2, $3, $4
       WHERE (SELECT count(*) FROM nt_webhooks WHERE user_id = $2) < $5`,
      [w.id, w.userId, w.url, w.secret, max],
    );
    return r.rowCount === 1 ? "created" : "full";
  }, { lock: { space: WEBHOOK_LOCK_SPACE, key: w.userId } });
}

export async function deleteWebhook(db: Queryable, userId: string, id: string): Promise<boolean> {
  return ((await db.query("DELETE FROM nt_webhooks WHERE webhook_id = $1 AND user_id = $2", [id, userId])).rowCount ?? 0) === 1;
}

/**
 * How many of the user's deliveries wait to be sent on each of `channels` (pending: postponed by the
 * rate limit or quiet hours, or retrying), counted up to `cap` each (index of migration 0463).
 */
export async function pendingByChannel(db: Queryable, userId: string, channels: Channel[], cap: number): Promise<Map<Channel, number>> {
  if (!channels.length) return new Map();
  const { rows } = await db.query<{ channel: Channel; n: number }>(
    `SELECT c AS channel, (SELECT count(*)::int FROM (SELECT 1 FROM nt_deliveries WHERE user_id = $1 AND channel = c AND status = 'pending' LIMIT $3) p) AS n
       FROM unnest($2::text[]) AS x(c)`,
    [userId, [...new Set(channels)], cap],
  );
  return new Map(rows.map((r) => [r.channel, r.n]));
}

/** Key space of the per-user-and-channel backlog lock (first half of the two-int advisory lock key; "np"). */
const BACKLOG_LOCK_SPACE = 0x6e70;

/**
 * Takes the user's backlog lock of each of `channels`, held to the end of the transaction `tx`, in one
 * order (two takers never wait on each other): what counts a backlog and then queues onto it (ingest, a
 * replay) takes turns with the others doing so for the same user and channel. Counted in the
 * transaction alone, concurrent ones (two replays sent at once, a replay beside ingest, two replicas'
 * ingests) each saw the rows before the others committed, and together passed NOTIFY_MAX_PENDING_PER_CHANNEL
 * (session 44's hunt). Outside a transaction the lock would end with its statement: callers open one.
 */
export async function lockBacklogs(tx: Queryable, userId: string, channels: Channel[]): Promise<void> {
  for (const c of [...new Set(channels)].sort()) await tx.query("SELECT pg_advisory_xact_lock($1, hashtext($2 || ':' || $3))", [BACKLOG_LOCK_SPACE, userId, c]);
}

/** One delivery per (notice, channel, target); an existing one (a redelivered event) is left alone. */
export async function insertDeliveries(db: Queryable, n: Notice, targets: { channel: Channel; target: string }[], notBefore: Date): Promise<number> {
  if (!targets.length) return 0;
  const r = await db.query(
    `INSERT INTO nt_deliveries (dedup_key, user_id, channel, target, kind, subject, body, notice, next_attempt_at)
     SELECT $1, $2, c, t, $3, $4, $5, $6, $7 FROM unnest($8::text[], $9::text[]) AS x(c, t)
     ON CONFLICT (dedup_key, channel, target) DO NOTHING`,
    [n.dedupKey, n.userId, n.kind, n.subject, n.text, JSON.stringify(n), notBefore, targets.map((t) => t.channel), targets.map((t) => t.target)],
  );
  return r.rowCount ?? 0;
}

export interface DeliveryRow {
  delivery_id: string;
  dedup_key: string;
  user_id: string;
  channel: Channel;
  target: string;
  kind: string;
  subject: string;
  body: string;
  notice: Notice;
  status: "pending" | "sent" | "dead";
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  created_at: Date;
  sent_at: Date | null;
}

/**
 * Claims due deliveries for `leaseMs` (pushes their next attempt out), so replicas never send the
 * same one concurrently and a crash mid-send only delays it until the lease ends.
 */
export async function claimDue(db: Queryable, limit: number, leaseMs: number): Promise<DeliveryRow[]> {
  const { rows } = await db.query<DeliveryRow>(
    `UPDATE nt_deliveries SET next_attempt_at = now() + $2 * interval '1 millisecond'
     WHERE delivery_id IN (SELECT delivery_id FROM nt_deliveries WHERE status = 'pending' AND next_attempt_at <= now()
                           ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
     RETURNING *`,
    [limit, leaseMs],
  );
  return rows;
}

export async function markSent(db: Queryable, id: string): Promise<void> {
  await db.query("UPDATE nt_deliveries SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE delivery_id = $1", [id]);
}

/** Not sent now, not a failure (quiet hours, rate limit): try again at `at`, attempts unchanged. */
export async function postpone(db: Queryable, id: string, at: Date, why: string): Promise<void> {
  await db.query("UPDATE nt_deliveries SET next_attempt_at = $2, last_error = $3 WHERE delivery_id = $1", [id, at, why]);
}

export async function markFailed(db: Queryable, id: string, error: string, retryAt: Date): Promise<void> {
  await db.query("UPDATE nt_deliveries SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE delivery_id = $1", [id, error.slice(0, 500), retryAt]);
}

/** Out of attempts (or permanently refused): dead, with a dead letter, in one transaction. */
export async function markDead(db: Queryable, d: DeliveryRow, error: string): Promise<void> {
  await db.query(
    `WITH d AS (UPDATE nt_deliveries SET status = 'dead', attempts = attempts + 1, last_error = $2 WHERE delivery_id = $1 AND status = 'pending' RETURNING delivery_id, user_id, channel, attempts)
     INSERT INTO nt_dead_letters (delivery_id, user_id, channel, reason, attempts) SELECT delivery_id, user_id, channel, $2, attempts FROM d`,
    [d.delivery_id, error.slice(0, 500)],
  );
}

export async function deliveries(db: Queryable, userId: string, limit: number): Promise<DeliveryRow[]> {
  return (await db.query<DeliveryRow>("SELECT * FROM nt_deliveries WHERE user_id = $1 ORDER BY created_at DESC, delivery_id DESC LIMIT $2", [userId, limit])).rows;
}

export interface DeadLetterRow { dead_letter_id: string; delivery_id: string; user_id: string; channel: string; reason: string; attempts: number; created_at: Date; replayed_at: Date | null; kind: string; dedup_key: string }

export async function deadLetters(db: Queryable, userId: string | null, limit: number): Promise<DeadLetterRow[]> {
  return (
    await db.query<DeadLetterRow>(
      `SELECT l.*, d.kind, d.dedup_key FROM nt_dead_letters l JOIN nt_deliveries d USING (delivery_id)
       WHERE ($1::text IS NULL OR l.user_id = $1) ORDER BY l.created_at DESC, l.dead_letter_id DESC LIMIT $2`,
      [userId, limit],
    )
  ).rows;
}

/**
 * Puts a dead letter's delivery back in the queue with fresh attempts; undefined when not found (or not
 * the user's); "full" when the user's backlog on its channel is at `maxPending` (NOTIFY_MAX_PENDING_PER_CHANNEL):
 * a replay is a delivery waiting like any other, and replays bypassed that bound (session 43's hunt: a
 * user whose endpoint answers 410 has every notice dead at once, kept NOTIFY_RETENTION_DAYS, and each
 * replayed one went back to pending, as many as there were dead letters). `tx` is a transaction: the
 * dead letter's row and the backlog's lock (lockBacklogs) are held to its end. `{ accountDeleted }`: the
 * letter's owner (that id) was deleted, read under the account's lock: nothing is queued for it.
 */
export async function replayDeadLetter(tx: Queryable, id: string, userId: string | null, maxPending: number): Promise<"replayed" | "already" | "full" | { accountDeleted: string } | undefined> {
  // The delivery's row first, then the letter's: the retention pass's order (deleteOldDeliveries). The
  // letter first and the delivery last (its UPDATE below, four round trips later), a replay of a letter
  // just of retention age met the pass, holding the delivery and waiting for the letter, in a deadlock
  // (40P01: the replay's 503 or the pass failed; tests/business/notification-lock-order.test.ts: 13 in
  // PostgreSQL's count before its rounds stopped at two replays' 503). Locked here, the delivery is skipped by the pass (SKIP LOCKED); one the
  // pass holds is waited for and, deleted, no longer found (404). FOR NO KEY UPDATE: the UPDATE's own
  // lock, which a dead letter's insert (the foreign key's KEY SHARE) does not wait for.
  const locked = await tx.query(
    "SELECT d.delivery_id FROM nt_dead_letters l JOIN nt_deliveries d USING (delivery_id) WHERE l.dead_letter_id = $1 AND ($2::text IS NULL OR l.user_id = $2) FOR NO KEY UPDATE OF d",
    [id, userId],
  );
  if (locked.rowCount === 0) return undefined;
  const l = (
    await tx.query<{ delivery_id: string; replayed_at: Date | null; user_id: string; channel: Channel }>(
      "SELECT delivery_id, replayed_at, user_id, channel FROM nt_dead_letters WHERE dead_letter_id = $1 AND ($2::text IS NULL OR user_id = $2) FOR UPDATE",
      [id, userId],
    )
  ).rows[0];
  if (!l) return undefined;
  if (l.replayed_at) return "already";
  // The letter's owner's lock (kit lockAccountForWrite): a deleted account's letter is not queued again.
  if ((await lockAccountForWrite(tx, l.user_id)) === "deleted") return { accountDeleted: l.user_id };
  await lockBacklogs(tx, l.user_id, [l.channel]);
  if (((await pendingByChannel(tx, l.user_id, [l.channel], maxPending)).get(l.channel) ?? 0) >= maxPending) return "full";
  await tx.query("UPDATE nt_dead_letters SET replayed_at = now() WHERE dead_letter_id = $1", [id]);
  await tx.query("UPDATE nt_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL WHERE delivery_id = $1 AND status = 'dead'", [l.delivery_id]);
  return "replayed";
}

/**
 * Deletes the deliveries made more than `afterSeconds` ago, sent or dead, with their dead letters, among
 * the `batch` oldest that are not pending (by id, a partial index of migration 0464: a pass costs the same
 * whatever the table's size); answers how many deliveries. Pending ones stay. Before, only sent ones went
 * and the batch was the oldest rows of any status: a dead delivery, kept for ever, and a sent one with a
 * dead letter (replayed, then sent), which the dead letter's foreign key kept the DELETE from removing
 * (the pass failed, and the next took the same rows), stopped the retention for every user for good. A
 * redelivered event older than that (Kafka keeps days, this months) could notify again.
 * Lock order: the deliveries' rows (FOR UPDATE SKIP LOCKED), then their dead letters' (the DELETE), as a
 * replay takes them (replayDeadLetter); no advisory lock, no account row.
 */
export async function deleteOldDeliveries(db: Queryable, afterSeconds: number, batch: number): Promise<number> {
  const r = await db.query(
    `WITH oldest AS (SELECT delivery_id FROM nt_deliveries WHERE status <> 'pending' ORDER BY delivery_id LIMIT $2 FOR UPDATE SKIP LOCKED),
          expired AS (SELECT d.delivery_id FROM nt_deliveries d JOIN oldest USING (delivery_id) WHERE d.status <> 'pending' AND d.created_at < now() - make_interval(secs => $1)),
          letters AS (DELETE FROM nt_dead_letters l USING expired e WHERE l.delivery_id = e.delivery_id)
     DELETE FROM nt_deliveries d USING expired e WHERE d.delivery_id = e.delivery_id`,
    [afterSeconds, batch],
  );
  return r.rowCount ?? 0;
}
