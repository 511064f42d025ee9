/**
 * Transactional outbox relay. A service writes its events into `<table>` in the same PostgreSQL
 * transaction as the state change (`enqueue`); this relay reads unsent rows in id order, publishes
 * them with the kit's idempotent kafkajs producer (acks=all), then marks them sent. If the process
 * dies after the commit but before publishing, the rows are still unsent and go out on restart; if
 * it dies after publishing but before marking, they are published again: delivery is at-least-once
 * and every event carries a unique `eventId` that consumers dedupe on. `FOR UPDATE SKIP LOCKED`
 * lets two replicas relay concurrently without sending a row twice in the normal case.
 *
 * Where a drain starts: a sent row leaves a dead entry in the `sent_at IS NULL` index until vacuum,
 * and a scan from the first id walked every one of them (bench/trading.ts at 200 orders/s, 30 s
 * in: 4,080 index entries read per te_outbox scan, 1.1 ms each, the slowest statement on the order
 * path). A committer that knows the smallest id it enqueued (`enqueue`'s answer) announces it, and
 * the next drain scans from the smallest id announced: every row committed and announced before
 * the drain has an id at least that. Rows nobody announced (another process's, a crashed run's, a
 * caller of notify() without an id) are found by a scan from the start at least every `intervalMs`.
 *
 * Direct publish (`direct`, order-management and the trading-engine): the committer hands the relay
 * the rows it enqueued (`enqueue`'s answer, ids and messages) once committed, and the relay
 * publishes them at once, then marks them sent in one UPDATE outside any transaction. The drain
 * becomes the safety net: it takes only rows older than `graceMs` (a committer that died between
 * its commit and the publish, a failed publish, another replica's stalled rows) and skips the rows
 * this process is still publishing or marking. Per batch on the order path this saves the drain's
 * two round trips (BEGIN + SELECT, UPDATE + COMMIT) and its wait for the previous drain; a SIGKILL
 * between the publish and the mark publishes the rows again later, as a kill between the drain's
 * produce and its COMMIT always did (consumers dedupe on `eventId`). If a direct publish fails, the
 * relay falls back to draining (in id order, without the grace) until a drain has caught up, so a
 * later event of the same key does not overtake an earlier one that failed.
 */
import { lastResult } from "../../kit/datastores/postgres";
import type { Pool } from "pg";
import type { Logger } from "pino";
import { BIGINT_RE, defaultMarkLingerMs, publishRows, TABLE_RE, TRACE_KEY, type Enqueued, type OutboxMessage, type Sender } from "./outboxRows";
import type { PeriodicDelete } from "../../kit/datastores/periodic-delete";
import { outboxPruner, type OutboxRetention } from "./outboxRetention";

export * from "./outboxRows";

export class OutboxRelay {
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = false;
  private kick?: () => void;
  /** The smallest id announced since the current drain began (undefined: none, or one without an id). */
  private announcedFrom?: bigint;
  /** A notify() without an id came since the current drain began: the next drain scans from the start. */
  private announcedUnknown = false;
  /** When the last scan from the start began (0: never, so the first drain is one). */
  private lastFullScan = 0;
  /** The largest id the last drain sent. */
  private lastSent?: bigint;
  /** How many rows the last drain picked (sent or skipped). */
  private lastPicked = 0;
  private loop?: Promise<void>;
  published = 0;
  /** Rows published directly (a part of `published`). */
  publishedDirect = 0;
  private readonly batch: number;
  private readonly graceMs: number;
  private readonly markLingerMs: number;
  /** Direct publish: rows handed over by committers and not yet published. */
  private directQueue: OutboxMessage[] = [];
  /** Ids this process is publishing or marking: the drain leaves them alone. */
  private readonly claimed = new Set<string>();
  /** Ids published directly and not yet marked sent. */
  private toMark: string[] = [];
  private directRun?: Promise<void>;
  private markRun?: Promise<void>;
  /** Deletes the sent rows older than the retention (outboxRetention.ts) while the relay runs. */
  private readonly pruner?: PeriodicDelete;
  /** A direct publish failed: drain (in id order, no grace) until a drain has caught up. */
  private fallback = false;
  /** A drain from the start has run since the relay fell back. */
  private fallbackScanned = false;
  constructor(
    private readonly pool: Pool,
    private readonly table: string,
    private readonly sender: Sender,
    private readonly log: Logger,
    private readonly opts: { intervalMs?: number; batch?: number; direct?: boolean; graceMs?: number; markLingerMs?: number; retention?: OutboxRetention } = {},
  ) {
    if (!TABLE_RE.test(table)) throw new Error(`bad outbox table ${table}`);
    this.batch = opts.batch ?? 200;
    if (!Number.isSafeInteger(this.batch) || this.batch < 1) throw new Error(`bad outbox batch ${opts.batch}`);
    this.graceMs = opts.graceMs ?? 2000;
    if (!Number.isSafeInteger(this.graceMs) || this.graceMs < 0) throw new Error(`bad outbox grace ${opts.graceMs}`);
    this.markLingerMs = opts.markLingerMs ?? defaultMarkLingerMs(this.graceMs);
    if (!Number.isSafeInteger(this.markLingerMs) || this.markLingerMs < 0) throw new Error(`bad outbox mark linger ${opts.markLingerMs}`);
    if (opts.retention) this.pruner = outboxPruner(pool, table, log, opts.retention);
  }

  private get directOn(): boolean {
    return this.opts.direct === true && !this.fallback && !this.stopped;
  }

  /**
   * How often a drain scans from the start. With direct publish it is only the safety net, and each
   * scan walks every unsent row younger than the grace (at 200 orders/s, a thousand of them, 4.5 ms
   * a scan, a tenth of PostgreSQL's statement time at 5 scans a second): half the grace is enough.
   */
  private get scanIntervalMs(): number {
    const interval = this.opts.intervalMs ?? 200;
    return this.directOn ? Math.max(interval, Math.floor(this.graceMs / 2)) : interval;
  }

  /** Publishes what committers handed over, one batch at a time (kafkajs keeps the order of sends made one after another). */
  private pumpDirect(): void {
    if (this.directRun) return;
    this.directRun = (async () => {
      while (this.directQueue.length > 0 && !this.fallback) {
        const rows = this.directQueue.splice(0, this.directQueue.length);
        try {
          await publishRows(this.sender, rows);
          this.published += rows.length;
          this.publishedDirect += rows.length;
          for (const r of rows) this.toMark.push(r.id);
          this.pumpMarks();
        } catch (err) {
          // Unsent rows stay in the table: the drain takes them, and everything after them, in id order.
          this.log.warn({ err: { message: (err as Error).message }, table: this.table }, "outbox direct publish failed; draining instead");
          this.fallback = true;
          this.fallbackScanned = false;
          for (const r of [...rows, ...this.directQueue]) this.claimed.delete(r.id);
          this.directQueue = [];
          this.announcedUnknown = true;
          this.kick?.();
        }
      }
    })().finally(() => {
      this.directRun = undefined;
      if (this.directQueue.length > 0 && this.directOn) this.pumpDirect();
    });
  }

  /** The UPDATE marking `ids` sent, written with literals (simple protocol): each id is checked to be an integer. */
  private markSentSql(ids: string[]): string {
    if (!ids.every((id) => BIGINT_RE.test(id))) throw new Error(`${this.table}: an id that is not an integer`);
    return `UPDATE ${this.table} SET sent_at = now() WHERE id = ANY('{${ids.join(",")}}'::bigint[])`;
  }

  /**
   * Marks directly published rows sent, all pending ids in one UPDATE (no transaction: one round
   * trip), at most once per `markLingerMs` (defaultMarkLingerMs): at 200 orders/s about four UPDATEs
   * a second instead of one per commit. The cost is only a wider window in which a SIGKILL republishes
   * sent rows (consumers dedupe on eventId).
   */
  private pumpMarks(): void {
    if (this.markRun) return;
    this.markRun = (async () => {
      while (this.toMark.length > 0) {
        if (!this.stopped) await new Promise((r) => setTimeout(r, this.markLingerMs));
        const ids = this.toMark.splice(0, this.toMark.length);
        try {
          await this.pool.query(this.markSentSql(ids));
        } catch (err) {
          // Published but not marked: the drain publishes them again after the grace (consumers dedupe).
          this.log.warn({ err: { message: (err as Error).message }, table: this.table, rows: ids.length }, "outbox mark failed");
        } finally {
          for (const id of ids) this.claimed.delete(id);
        }
      }
    })().finally(() => {
      this.markRun = undefined;
      if (this.toMark.length > 0) this.pumpMarks();
    });
  }

  /**
   * Publishes pending rows once, from the id `from` on (0: all); returns how many were sent. Two
   * round trips to PostgreSQL per batch, not four: BEGIN travels with the SELECT and COMMIT with
   * the UPDATE (simple-protocol statements with no parameters: the table name is checked, the limit,
   * `from` and the ids are integers).
   * On a busy host each round trip waits for both processes to be scheduled (the breakdown of
   * bench/trading.ts), and every row committed during a drain waits for the next one.
   */
  async drainOnce(from = 0n): Promise<number> {
    this.lastSent = undefined;
    this.lastPicked = 0;
    // With direct publish on, rows younger than the grace are their committers' to publish.
    const grace = this.directOn ? ` AND created_at < now() - interval '${this.graceMs} milliseconds'` : "";
    const client = await this.pool.connect();
    let broken = false;
    try {
      const picked: unknown = await client.query(
        `BEGIN; SELECT id, topic, msg_key, payload, event_id FROM ${this.table} WHERE sent_at IS NULL${from > 0n ? ` AND id >= ${from}` : ""}${grace} ORDER BY id LIMIT ${this.batch} FOR UPDATE SKIP LOCKED`,
      );
      const pickedRows = lastResult<{ id: string; topic: string; msg_key: string; payload: Record<string, unknown>; event_id: string }>(picked);
      this.lastPicked = pickedRows.length;
      // Rows this process is publishing or marking directly are not the drain's.
      const rows = pickedRows.filter((r) => !this.claimed.has(String(r.id)));
      if (rows.length === 0) {
        await client.query("COMMIT");
        return 0;
      }
      await publishRows(
        this.sender,
        rows.map((r) => {
          const { [TRACE_KEY]: trace, ...payload } = r.payload as Record<string, unknown> & { [TRACE_KEY]?: Record<string, string> };
          return { id: String(r.id), topic: r.topic, key: r.msg_key, value: JSON.stringify(payload), eventId: r.event_id, trace };
        }),
      );
      const ids = rows.map((r) => r.id);
      await client.query(`${this.markSentSql(ids)}; COMMIT`);
      this.published += rows.length;
      this.lastSent = BigInt(ids[ids.length - 1]);
      return rows.length;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => (broken = true));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Wakes the relay right away: call after committing a transaction that enqueued events, with the
   * smallest id it enqueued (`enqueue`'s answer) so the drain need not scan from the start.
   */
  notify(enqueued?: string | Enqueued): void {
    if (typeof enqueued === "object" && this.directOn) {
      for (const m of enqueued.messages) this.claimed.add(m.id);
      this.directQueue.push(...enqueued.messages);
      this.pumpDirect();
      return;
    }
    const firstId = typeof enqueued === "object" ? enqueued.firstId : enqueued;
    if (firstId !== undefined && BIGINT_RE.test(firstId)) {
      const id = BigInt(firstId);
      if (this.announcedFrom === undefined || id < this.announcedFrom) this.announcedFrom = id;
    } else this.announcedUnknown = true;
    this.kick?.();
  }

  /** Where the next drain starts (and resets what was announced): see the class comment. */
  private nextFrom(continueAfter: bigint | undefined): bigint {
    const now = Date.now();
    const [announced, unknown] = [this.announcedFrom, this.announcedUnknown];
    this.announcedFrom = undefined;
    this.announcedUnknown = false;
    // From the start: when told of rows without an id, woken by the timer, or once per interval.
    if (unknown || (announced === undefined && continueAfter === undefined) || now - this.lastFullScan >= this.scanIntervalMs) {
      this.lastFullScan = now;
      return 0n;
    }
    if (announced === undefined) return continueAfter!;
    return continueAfter === undefined || announced < continueAfter ? announced : continueAfter;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.pruner?.start();
    this.loop = (async () => {
      // After a full batch, the rest is past its last row (or announced when it commits).
      let continueAfter: bigint | undefined;
      while (!this.stopped) {
        const from = this.nextFrom(continueAfter);
        continueAfter = undefined;
        try {
          const wasFallback = this.fallback;
          await this.drainOnce(from);
          if (this.lastPicked >= this.batch && this.lastSent !== undefined) continueAfter = this.lastSent + 1n;
          // Caught up after a failed direct publish: a scan from the start has run since, this drain was
          // not full, and no commit was announced during it (its rows, announced while falling back,
          // must be drained without the grace). Committers publish directly again.
          if (wasFallback && from === 0n) this.fallbackScanned = true;
          if (wasFallback && this.fallbackScanned && this.lastPicked < this.batch && this.announcedFrom === undefined && !this.announcedUnknown) this.fallback = false;
        } catch (err) {
          this.log.warn({ err: { message: (err as Error).message }, table: this.table }, "outbox relay failed; retrying");
          this.lastFullScan = 0; // what the failed drain had picked is found again from the start
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        // A drain that took less than a full batch took every row committed before its SELECT; a row
        // committed since was announced by notify() meanwhile (its committer calls it after the
        // commit). So drain again only when the batch was full or a commit was announced: the empty
        // drain that used to follow every non-empty one (two round trips and a pool checkout, for
        // nothing, on every wake-up of a lightly loaded path) is gone. Rows of a committer that does
        // not call notify(), or of a replica that died before relaying, wait for the interval.
        if (this.lastPicked < this.batch && this.announcedFrom === undefined && !this.announcedUnknown && !this.stopped)
          await new Promise<void>((resolve) => {
            this.kick = resolve;
            this.timer = setTimeout(resolve, this.scanIntervalMs);
          });
        this.kick = undefined;
        if (this.timer) clearTimeout(this.timer);
      }
    })();
  }

  async stop(): Promise<void> {
    // What committers handed over goes out (and is marked) before the drain's last round.
    while (this.directRun || this.markRun) await Promise.all([this.directRun, this.markRun]);
    this.stopped = true;
    this.kick?.();
    await Promise.all([this.loop, this.pruner?.stop()]);
    while (this.directRun || this.markRun) await Promise.all([this.directRun, this.markRun]);
  }
}
