/**
 * How long an outbox keeps its sent rows. A sent row has done its job (Kafka has the event, and
 * consumers dedupe on its `eventId`); kept, every outbox grew by each event for ever: at 200 orders/s
 * om_outbox and te_outbox together gain about 60 million rows a day, with their event_id indexes.
 * Kept `retentionMs` after sending (what was published, for an investigation, and the event_id
 * conflict that skips a late re-enqueue), then deleted, oldest first (the kit's PeriodicDelete).
 *
 * Each pass looks at the `batch` oldest rows by id only (the primary key's first pages) and deletes
 * the ones sent before the cutoff: a pass costs the same whatever the table's size, even when nothing
 * is old enough. Rows are sent in about id order, so the oldest ids are the first due. A row another
 * transaction holds (a drain's FOR UPDATE) is skipped, not waited for. Unsent rows are never deleted.
 */
import { Type } from "@sinclair/typebox";
import type { Pool } from "pg";
import type { Logger } from "pino";
import { PeriodicDelete } from "../../kit/datastores/periodic-delete";
import { TABLE_RE } from "./outboxRows";

/** A service's `<PREFIX>_OUTBOX_RETENTION_HOURS` setting: three days by default, at most a year. */
export const outboxRetentionHours = () => Type.Integer({ default: 72, minimum: 1, maximum: 8_760 });
export const HOUR_MS = 3_600_000;

export interface OutboxRetention {
  /** Sent rows older than this are deleted. */
  retentionMs: number;
  /** Time between passes while nothing is due. */
  intervalMs?: number;
  /** Rows looked at per pass. */
  batch?: number;
}

/** The periodic deletion of `table`'s sent rows older than the retention (start/stop with the relay). */
export function outboxPruner(pool: Pool, table: string, log: Pick<Logger, "warn">, opts: OutboxRetention): PeriodicDelete {
  if (!TABLE_RE.test(table)) throw new Error(`bad outbox table ${table}`);
  if (!Number.isSafeInteger(opts.retentionMs) || opts.retentionMs < 0) throw new Error(`bad outbox retention ${opts.retentionMs}`);
  const batch = opts.batch ?? 5_000;
  if (!Number.isSafeInteger(batch) || batch < 1) throw new Error(`bad outbox prune batch ${opts.batch}`);
  const pass = async () =>
    (
      await pool.query(
        `WITH oldest AS (SELECT id FROM ${table} ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
         DELETE FROM ${table} t USING oldest WHERE t.id = oldest.id AND t.sent_at < now() - make_interval(secs => $2)`,
        [batch, opts.retentionMs / 1000],
      )
    ).rowCount ?? 0;
  return new PeriodicDelete(`${table} sent rows`, pass, log, { intervalMs: opts.intervalMs });
}
