/**
 * What a consumer does with a message it can never apply: set it aside in `consumer_dead_letters`
 * (migrations/postgres/0195, its headers since 0496) with the reason, and keep consuming. An outage (the kit's
 * isTransientError: connection refused, serialization failure, server shutting down, Kafka
 * retriable, or a HandlerUnavailableError) is retried instead, so nothing is set aside because a
 * datastore blinked; any other error (a PoisonMessageError, bad input the datastore refused, a bug)
 * sets the message aside.
 *
 * Each dead letter recorded counts once in `consumer_dead_letters_total{consumer_group, topic}` of the
 * service's registry (the MessagesSetAside alert): not a failed write (the message is retried), nor
 * a redelivered one PostgreSQL already holds.
 */
import { Counter, type Registry } from "prom-client";
import { clickhouseDateTime, isTransientError, storableText, type ClickHouseKitClient, type Queryable } from "../../kit";

/** Thrown by a handler for a message that is malformed or carries values that can never be applied
 * (never retried, whatever its cause). */
export class PoisonMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PoisonMessageError";
  }
}

/**
 * Thrown by a handler that can apply no message at all until it has recovered (the trading-engine
 * whose book must first be rebuilt from PostgreSQL): an outage whatever its cause, so the batch is
 * retried later, never set aside.
 */
export class HandlerUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HandlerUnavailableError";
  }
}

export interface DeadLetter {
  groupId: string;
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** The message's Kafka headers as received (deadLetterHeaders). */
  headers: DeadLetterHeader[];
  reason: string;
}

/** One Kafka header of a dead letter: its name, its value's bytes in base64 (null: a header without a value). */
export interface DeadLetterHeader {
  name: string;
  value: string | null;
}

/**
 * A message's headers as kafkajs hands them over, listed in order with each value's bytes in base64
 * (values need not be UTF-8). kafkajs 2.2.4 reads a record's headers in the order sent, then folds them
 * into an object by name (protocol/recordBatch/record/v0/decoder.js): a name sent more than once becomes
 * an array of its values in order (null: a header without a value). What the fold loses is lost before
 * this: the order between different names (a name that looks like an array index, "0" to "4294967294",
 * comes first in numeric order, the others in the order each was first seen), a name's bytes that are not
 * UTF-8 (decoded to U+FFFD), and a header without a name (kept under "null", with a header named so).
 * The fold asks `obj[name] === undefined`, so a name every object answers (`constructor`, `toString`,
 * `__proto__`, `hasOwnProperty`...) finds the inherited member and keeps it as that name's first
 * "value": only Buffers, strings and null are values here. Before session 52 that member reached Buffer.from,
 * which threw: every message carrying such a header failed its batch for ever, the partition stuck.
 */
export function deadLetterHeaders(headers: import("kafkajs").IHeaders | undefined): DeadLetterHeader[] {
  const list: DeadLetterHeader[] = [];
  for (const [name, values] of Object.entries(headers ?? {})) {
    for (const v of Array.isArray(values) ? values : [values]) {
      if (v === undefined || v === null) list.push({ name, value: null });
      else if (Buffer.isBuffer(v) || typeof v === "string") list.push({ name, value: Buffer.from(v).toString("base64") });
    }
  }
  return list;
}

/** A dead letter as PostgreSQL keeps it (consumer_dead_letters), what a replay sends back. */
export interface KeptMessage {
  msg_partition: number;
  msg_key: Buffer | null;
  msg_value: Buffer | null;
  /** deadLetterHeaders' list as json; null on the rows set aside before migration 0496. */
  msg_headers: unknown;
}

/**
 * The message a replay sends to the dead letter's topic: its partition, key, value and headers byte
 * for byte, the headers in the list's order (kafkajs' producer writes an object's names in their
 * order, array-index names first, as the consumer's fold listed them; a null-prototype object, so a
 * name like `__proto__` is a header like any other), or why it cannot be: headers not kept (a row
 * older than 0496), a header without a value (kafkajs 2.2.4's encoder cannot write one), or a list
 * that is not deadLetterHeaders' (an edited row).
 */
export function replayMessage(l: KeptMessage): { message: import("kafkajs").Message } | { problem: string } {
  if (l.msg_headers === null) return { problem: "its headers were not kept (set aside before migration 0496): a replay would send it without them" };
  if (!Array.isArray(l.msg_headers)) return { problem: "its msg_headers is not a list of headers" };
  const headers: import("kafkajs").IHeaders = Object.create(null);
  for (const [i, h] of l.msg_headers.entries()) {
    const { name, value } = (h ?? {}) as Partial<DeadLetterHeader>;
    if (typeof name !== "string" || (value !== null && typeof value !== "string")) return { problem: `its header ${i} is not a {name, value} pair` };
    if (value === null) return { problem: `its header ${JSON.stringify(name)} has no value, which the message broker's client cannot send` };
    const bytes = Buffer.from(value, "base64");
    if (bytes.toString("base64") !== value) return { problem: `its header ${JSON.stringify(name)}'s value is not base64` };
    const before = headers[name];
    headers[name] = before === undefined ? bytes : Array.isArray(before) ? [...before, bytes] : [before, bytes];
  }
  return { message: { partition: l.msg_partition, key: l.msg_key, value: l.msg_value, headers } };
}

/**
 * The reason as text PostgreSQL accepts (no NUL, well-formed UTF-16), bounded: a NUL shown as "\\0",
 * the rest made storable by the kit's storableText after the cut (a cut between the halves of a pair
 * left half of one: the text the function promised was not well-formed, though the driver's UTF-8
 * encoding turned that half into U+FFFD on the way to the text column).
 */
export function reasonText(err: unknown): string {
  const raw = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return storableText(raw.replace(/\u0000/g, "\\0").slice(0, 1000));
}

export const DEAD_LETTERS_METRIC = "consumer_dead_letters_total";

/** The registry's dead-letter counter (one per registry, whatever the number of consumers or restarts). */
export function deadLettersCounter(registry: Registry): Counter<"consumer_group" | "topic"> {
  const existing = registry.getSingleMetric(DEAD_LETTERS_METRIC);
  if (existing instanceof Counter) return existing;
  return new Counter({
    name: DEAD_LETTERS_METRIC,
    help: "messages a consumer group set aside in consumer_dead_letters (never applied), by topic",
    labelNames: ["consumer_group", "topic"],
    registers: [registry],
  });
}

/** Whether the row was written (false: the same message was set aside before, a redelivery). */
export async function recordDeadLetter(db: Queryable, d: DeadLetter): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO consumer_dead_letters (consumer_group, topic, msg_partition, msg_offset, msg_key, msg_value, msg_headers, reason)
     VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8) ON CONFLICT DO NOTHING`,
    [d.groupId, d.topic, d.partition, d.offset, d.key, d.value, JSON.stringify(d.headers), d.reason],
  );
  return (r.rowCount ?? 0) > 0;
}

/** Where a consumer sets messages aside: PostgreSQL's table, or ClickHouse's for a consumer without PostgreSQL (migrations/clickhouse/0007). */
export type DeadLetterStore = { postgres: Queryable } | { clickhouse: ClickHouseKitClient };

/** Records the dead letter and counts it once written (`counter`); a failed write throws, uncounted. */
export async function setAside(store: DeadLetterStore, d: DeadLetter, counter: Counter<"consumer_group" | "topic">): Promise<void> {
  const written = "postgres" in store ? await recordDeadLetter(store.postgres, d) : await insertIntoClickHouse(store.clickhouse, d);
  if (written) counter.inc({ consumer_group: d.groupId, topic: d.topic });
}

/** ClickHouse keeps every insert (a redelivered message is a second row, counted again). */
async function insertIntoClickHouse(clickhouse: ClickHouseKitClient, d: DeadLetter): Promise<true> {
  await clickhouse.insert("consumer_dead_letters", [
    {
      consumer_group: d.groupId,
      topic: d.topic,
      msg_partition: d.partition,
      msg_offset: Number(d.offset),
      msg_key_base64: d.key?.toString("base64") ?? "",
      msg_value_base64: d.value?.toString("base64") ?? "",
      // '' above is both none and empty (migrations/clickhouse/0031).
      msg_key_null: d.key === null ? 1 : 0,
      msg_value_null: d.value === null ? 1 : 0,
      msg_headers: JSON.stringify(d.headers),
      reason: d.reason,
      created_at: clickhouseDateTime(Date.now()),
    },
  ]);
  return true;
}

/** Whether a failed message should be retried (an outage) rather than set aside. */
export function isRetriable(err: unknown): boolean {
  if (err instanceof HandlerUnavailableError) return true;
  return !(err instanceof PoisonMessageError) && isTransientError(err);
}
