/**
 * The transactional outbox's rows: a service writes its events into `<table>` in the same
 * PostgreSQL transaction as the state change (`enqueue`, or `outboxInsert` inside a statement of its
 * own), and hands what it inserted (`Enqueued`) to the relay once committed (outbox.ts).
 */
import { executeWith, parameterLiteral, type CommitWith, type PreparedStatement, type Queryable } from "../../kit/datastores/postgres";
import { traceCarrier, withTraceCarrier } from "../../kit/telemetry/context";

export const BIGINT_RE = /^\d{1,19}$/;

/** Payload key holding the enqueuing request's W3C trace context; the relay removes it before publishing. */
export const TRACE_KEY = "$trace";

export interface OutboxEvent {
  eventId: string;
  topic: string;
  key: string;
  /** The message body (an interface of trading/events.ts); `eventId` is added to it. */
  payload: object;
}

export const TABLE_RE = /^[a-z_][a-z0-9_]*$/;

/**
 * The statement that inserts events into `table` with their parameters numbered from `first`:
 * `enqueue` runs it alone, a caller may run it as the last part of a statement of its own (a
 * data-modifying WITH) to save a round trip.
 */
export function outboxInsert(
  table: string,
  events: OutboxEvent[],
  first = 1,
): { sql: string; params: string[][]; enqueued(rows: { id: string | number; event_id: string }[]): Enqueued | undefined } {
  return insertOf(table, events, () => [`$${first}`, `$${first + 1}`, `$${first + 2}`, `$${first + 3}`]);
}

/**
 * outboxInsert written with literals (kit parameterLiteral, as EXECUTE's arguments are), to travel
 * with other statements in one round trip (a COMMIT's) without a prepared statement.
 */
export function outboxInsertLiteral(table: string, events: OutboxEvent[]): { sql: string; enqueued(rows: { id: string | number; event_id: string }[]): Enqueued | undefined } {
  const { sql, enqueued } = insertOf(table, events, (params) => params.map(parameterLiteral));
  return { sql, enqueued };
}

/** The insert of `events` into `table`, its four arrays written where `args` puts them (parameters or literals). */
function insertOf(
  table: string,
  events: OutboxEvent[],
  args: (params: string[][]) => string[],
): { sql: string; params: string[][]; enqueued(rows: { id: string | number; event_id: string }[]): Enqueued | undefined } {
  if (!TABLE_RE.test(table)) throw new Error(`bad outbox table ${table}`);
  // With tracing on, the event is published later in the trace of the request that caused it.
  const trace = traceCarrier();
  // The published value; the stored payload is the same JSON unless a trace context rides along.
  const values = events.map((e) => JSON.stringify({ ...e.payload, eventId: e.eventId }));
  const stored = trace ? events.map((e) => JSON.stringify({ ...e.payload, eventId: e.eventId, [TRACE_KEY]: trace })) : values;
  const params = [events.map((e) => e.eventId), events.map((e) => e.topic), events.map((e) => e.key), stored];
  const [a, b, c, d] = args(params);
  return {
    sql: `INSERT INTO ${table} (event_id, topic, msg_key, payload)
     SELECT * FROM unnest(${a}::text[], ${b}::text[], ${c}::text[], ${d}::jsonb[]) ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id`,
    params,
    // Only the rows this statement inserted are the committer's to publish: an event id already in
    // the table (ON CONFLICT DO NOTHING) was enqueued, and is relayed, by whoever inserted it.
    enqueued(rows) {
      const idOf = new Map(rows.map((r) => [r.event_id, String(r.id)]));
      const messages: OutboxMessage[] = [];
      events.forEach((e, i) => {
        const id = idOf.get(e.eventId);
        if (id !== undefined && BIGINT_RE.test(id)) messages.push({ id, topic: e.topic, key: e.key, value: values[i], eventId: e.eventId, trace });
      });
      messages.sort((x, y) => (BigInt(x.id) < BigInt(y.id) ? -1 : 1));
      return messages.length ? { firstId: messages[0].id, messages } : undefined;
    },
  };
}

/** One enqueued row as it will be published. */
export interface OutboxMessage {
  id: string;
  topic: string;
  key: string;
  value: string;
  eventId: string;
  trace?: Record<string, string>;
}

/** What a committer enqueued (`enqueue`'s answer): hand it to OutboxRelay.notify once committed. */
export interface Enqueued {
  /** The smallest id inserted. */
  firstId: string;
  /** The inserted rows in id order. */
  messages: OutboxMessage[];
}

/**
 * Inserts the events in one statement (one round trip), inside the caller's transaction; answers what
 * it inserted (for OutboxRelay.notify once committed), undefined if nothing was.
 */
export async function enqueue(client: Queryable, table: string, events: OutboxEvent[]): Promise<Enqueued | undefined> {
  if (!TABLE_RE.test(table)) throw new Error(`bad outbox table ${table}`);
  if (events.length === 0) return undefined;
  const insert = outboxInsert(table, events);
  return insert.enqueued((await client.query<{ id: string; event_id: string }>(insert.sql, insert.params)).rows);
}

/** The insert of `table`'s events as a prepared statement (enqueueAndCommit's; among the transaction's `prepared`). */
export function outboxInsertStatement(table: string): PreparedStatement {
  return { name: `${table}_insert`, params: ["text[]", "text[]", "text[]", "jsonb[]"], text: outboxInsert(table, []).sql };
}

/**
 * enqueue as the transaction's last statement, sent with its COMMIT in one round trip (the kit's
 * `commitWith`; outboxInsertStatement(table) must be among the transaction's `prepared`). With no
 * events nothing is sent and undefined answered: the helper commits.
 */
export async function enqueueAndCommit(commitWith: CommitWith, table: string, events: OutboxEvent[]): Promise<Enqueued | undefined> {
  if (events.length === 0) return undefined;
  const insert = outboxInsert(table, events);
  return insert.enqueued((await commitWith(executeWith(outboxInsertStatement(table), insert.params))) as { id: string; event_id: string }[]);
}

export interface Sender {
  send(topic: string, messages: { key: string; value: string; headers?: Record<string, string> }[]): Promise<unknown>;
}

/** Publishes rows grouped by topic, in order within each topic; consecutive rows of one trace go out together, in that trace. */
export async function publishRows(sender: Sender, rows: OutboxMessage[]): Promise<void> {
  type Run = { trace?: Record<string, string>; msgs: { key: string; value: string; headers: Record<string, string> }[] };
  const byTopic = new Map<string, Run[]>();
  for (const r of rows) {
    const runs = byTopic.get(r.topic) ?? [];
    let last = runs[runs.length - 1];
    if (!last || last.trace?.traceparent !== r.trace?.traceparent) runs.push((last = { trace: r.trace, msgs: [] }));
    last.msgs.push({ key: r.key, value: r.value, headers: { "event-id": r.eventId } });
    byTopic.set(r.topic, runs);
  }
  for (const [topic, runs] of byTopic) for (const run of runs) await withTraceCarrier(run.trace, () => sender.send(topic, run.msgs));
}

/**
 * How long a direct publish's mark waits to share its UPDATE with later ones: 250 ms, a quarter of
 * the grace when that is shorter. At 50 ms order-management's and the trading-engine's marks were
 * about 18 autocommitted UPDATEs a second each at 200 orders/s (bench/trading.ts, BENCH_PG_STATEMENTS),
 * each a round trip and a commit; at 250 ms about 4. Kept well inside the grace: another replica's
 * drain takes an unmarked row once it is older than the grace, and would publish it once more.
 */
export const defaultMarkLingerMs = (graceMs: number): number => Math.min(250, Math.floor(graceMs / 4));
