/**
 * How long an outbox keeps its sent rows. A sent row has done its job (Kafka has the event, and
 * consumers dedupe on its `eventId`); kept, every outbox grew by each event for ever: at 200 orders/s
 * om_outbox and te_outbox together gain about 60 million rows a day, with their event_id indexes.
 * Kept `retentionMs` after sending (what was published, for an investigation, and the event_id
 * conflict that skips a late re-enqueue), then deleted, oldest first.
 *
 * Each pass looks at the `batch` oldest rows by id only (the primary key's first pages) and deletes
 * the ones sent before the cutoff: a pass costs the same whatever the table's size, even when nothing
 * is old enough. Rows are sent in about id order, so the oldest ids are the first due. A row another
 * transaction holds (a drain's FOR UPDATE) is skipped, not waited for; replicas pruning the same table
 * skip each other's rows the same way. Unsent rows are never deleted.
 */
import { Type } from "@sinclair/typebox";
import type { Pool } from "pg";
import type { Logger } from "pino";
import { TABLE_RE } from "./outboxRows";

/** A service's `<PREFIX>_OUTBOX_RETENTION_HOURS` setting: three days by default, at most a year. */
export const outboxRetentionHours = () => Type.Integer({ default: 72, minimum: 1, maximum: 8_760 });
export const HOUR_MS = 3_600_000;

export interface OutboxRetention {
  /** Sent rows older than this are deleted. */
  retentionMs: number;
  /** Time between prunes while nothing is due (a pass that deleted rows is followed by another a second later). */
  intervalMs?: number;
  /** Rows looked at per pass. */
  batch?: number;
}

export class OutboxPruner {
  private readonly intervalMs: number;
  private readonly batch: number;
  private timer?: NodeJS.Timeout;
  private run?: Promise<void>;
  private stopped = true;
  /** Rows deleted since the start. */
  pruned = 0;

  constructor(
    private readonly pool: Pool,
    private readonly table: string,
    private readonly log: Pick<Logger, "warn">,
    private readonly opts: OutboxRetention,
  ) {
    if (!TABLE_RE.test(table)) throw new Error(`bad outbox table ${table}`);
    if (!Number.isSafeInteger(opts.retentionMs) || opts.retentionMs < 0) throw new Error(`bad outbox retention ${opts.retentionMs}`);
    this.intervalMs = opts.intervalMs ?? 60_000;
    this.batch = opts.batch ?? 5_000;
    if (!Number.isSafeInteger(this.batch) || this.batch < 1) throw new Error(`bad outbox prune batch ${opts.batch}`);
  }

  /** Deletes the due rows among the `batch` oldest; answers how many. */
  async pruneOnce(): Promise<number> {
    const r = await this.pool.query(
      `WITH oldest AS (SELECT id FROM ${this.table} ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
       DELETE FROM ${this.table} t USING oldest WHERE t.id = oldest.id AND t.sent_at < now() - make_interval(secs => $2)`,
      [this.batch, this.opts.retentionMs / 1000],
    );
    this.pruned += r.rowCount ?? 0;
    return r.rowCount ?? 0;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = () => {
      this.run = this.pruneOnce()
        .then((n) => n > 0)
        .catch((err: unknown) => {
          this.log.warn({ err: { message: (err as Error).message }, table: this.table }, "outbox prune failed; trying again later");
          return false;
        })
        .then((more) => {
          // A backlog (a first start on a table that kept everything) goes at a batch a second, not flat out.
          if (!this.stopped) this.timer = setTimeout(tick, more ? 1_000 : this.intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, this.intervalMs).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.run;
  }
}
