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
 */
import { lastResult, type Queryable } from "../../kit/datastores/postgres";
import type { Pool } from "pg";
import type { Logger } from "pino";
import { traceCarrier, withTraceCarrier } from "../../kit/telemetry/context";

/** Payload key holding the enqueuing request's W3C trace context; the relay removes it before publishing. */
const TRACE_KEY = "$trace";

export interface OutboxEvent {
  eventId: string;
  topic: string;
  key: string;
  /** The message body (an interface of trading/events.ts); `eventId` is added to it. */
  payload: object;
}

const TABLE_RE = /^[a-z_][a-z0-9_]*$/;

/**
 * The statement that inserts events into `table` with their parameters numbered from `first`:
 * `enqueue` runs it alone, a caller may run it as the last part of a statement of its own (a
 * data-modifying WITH) to save a round trip.
 */
export function outboxInsert(table: string, events: OutboxEvent[], first = 1): { sql: string; params: string[][] } {
  if (!TABLE_RE.test(table)) throw new Error(`bad outbox table ${table}`);
  // With tracing on, the event is published later in the trace of the request that caused it.
  const trace = traceCarrier();
  const [a, b, c, d] = [first, first + 1, first + 2, first + 3];
  return {
    sql: `INSERT INTO ${table} (event_id, topic, msg_key, payload)
     SELECT * FROM unnest($${a}::text[], $${b}::text[], $${c}::text[], $${d}::jsonb[]) ON CONFLICT (event_id) DO NOTHING RETURNING id`,
    params: [events.map((e) => e.eventId), events.map((e) => e.topic), events.map((e) => e.key), events.map((e) => JSON.stringify({ ...e.payload, eventId: e.eventId, ...(trace ? { [TRACE_KEY]: trace } : {}) }))],
  };
}

/**
 * Inserts the events in one statement (one round trip), inside the caller's transaction; answers the
 * smallest id inserted (for OutboxRelay.notify once committed), undefined if none was.
 */
export async function enqueue(client: Queryable, table: string, events: OutboxEvent[]): Promise<string | undefined> {
  if (!TABLE_RE.test(table)) throw new Error(`bad outbox table ${table}`);
  if (events.length === 0) return undefined;
  const { sql, params } = outboxInsert(table, events);
  return smallestId((await client.query<{ id: string }>(sql, params)).rows);
}

const BIGINT_RE = /^\d{1,19}$/;

/** The smallest of the ids an outbox insert returned (bigint as text), undefined for none. */
export function smallestId(rows: { id: string | number }[]): string | undefined {
  let min: bigint | undefined;
  for (const r of rows) {
    const id = BigInt(r.id);
    if (min === undefined || id < min) min = id;
  }
  return min?.toString();
}

export interface Sender {
  send(topic: string, messages: { key: string; value: string; headers?: Record<string, string> }[]): Promise<unknown>;
}

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
  private loop?: Promise<void>;
  published = 0;
  private readonly batch: number;
  constructor(
    private readonly pool: Pool,
    private readonly table: string,
    private readonly sender: Sender,
    private readonly log: Logger,
    private readonly opts: { intervalMs?: number; batch?: number } = {},
  ) {
    if (!TABLE_RE.test(table)) throw new Error(`bad outbox table ${table}`);
    this.batch = opts.batch ?? 200;
    if (!Number.isSafeInteger(this.batch) || this.batch < 1) throw new Error(`bad outbox batch ${opts.batch}`);
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
    const client = await this.pool.connect();
    let broken = false;
    try {
      const picked: unknown = await client.query(
        `BEGIN; SELECT id, topic, msg_key, payload, event_id FROM ${this.table} WHERE sent_at IS NULL${from > 0n ? ` AND id >= ${from}` : ""} ORDER BY id LIMIT ${this.batch} FOR UPDATE SKIP LOCKED`,
      );
      const rows = lastResult<{ id: string; topic: string; msg_key: string; payload: Record<string, unknown>; event_id: string }>(picked);
      if (rows.length === 0) {
        await client.query("COMMIT");
        return 0;
      }
      // Group rows by topic, keeping order within each topic; within a topic, consecutive rows of one
      // trace go out together, in the trace context they were enqueued in.
      type Run = { trace?: Record<string, string>; msgs: { key: string; value: string; headers: Record<string, string> }[] };
      const byTopic = new Map<string, Run[]>();
      for (const r of rows) {
        const { [TRACE_KEY]: trace, ...payload } = r.payload as Record<string, unknown> & { [TRACE_KEY]?: Record<string, string> };
        const runs = byTopic.get(r.topic) ?? [];
        let last = runs[runs.length - 1];
        if (!last || last.trace?.traceparent !== trace?.traceparent) runs.push((last = { trace, msgs: [] }));
        last.msgs.push({ key: r.msg_key, value: JSON.stringify(payload), headers: { "event-id": r.event_id } });
        byTopic.set(r.topic, runs);
      }
      for (const [topic, runs] of byTopic) for (const run of runs) await withTraceCarrier(run.trace, () => this.sender.send(topic, run.msgs));
      const ids = rows.map((r) => r.id);
      if (!ids.every((id) => BIGINT_RE.test(id))) throw new Error(`${this.table}: an id that is not an integer`);
      await client.query(`UPDATE ${this.table} SET sent_at = now() WHERE id = ANY('{${ids.join(",")}}'::bigint[]); COMMIT`);
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
  notify(firstId?: string): void {
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
    if (unknown || (announced === undefined && continueAfter === undefined) || now - this.lastFullScan >= (this.opts.intervalMs ?? 200)) {
      this.lastFullScan = now;
      return 0n;
    }
    if (announced === undefined) return continueAfter!;
    return continueAfter === undefined || announced < continueAfter ? announced : continueAfter;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      // After a full batch, the rest is past its last row (or announced when it commits).
      let continueAfter: bigint | undefined;
      while (!this.stopped) {
        const from = this.nextFrom(continueAfter);
        continueAfter = undefined;
        let n = 0;
        try {
          n = await this.drainOnce(from);
          if (n >= this.batch && this.lastSent !== undefined) continueAfter = this.lastSent + 1n;
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
        if (n < this.batch && this.announcedFrom === undefined && !this.announcedUnknown && !this.stopped)
          await new Promise<void>((resolve) => {
            this.kick = resolve;
            this.timer = setTimeout(resolve, this.opts.intervalMs ?? 200);
          });
        this.kick = undefined;
        if (this.timer) clearTimeout(this.timer);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.kick?.();
    await this.loop;
  }
}
