/**
 * database-service's data access to the Kafka consumers' dead letters in PostgreSQL
 * (`consumer_dead_letters`: migrations 0195, 0496, 0489; written by trading/infra/deadLetters.ts):
 * listing them for an operator and replaying one once its cause was fixed.
 */
import type { PostgresClient, Queryable } from "../../kit";
import { replayMessage, type KeptMessage } from "../../trading/infra/deadLetters";

export interface ConsumerDeadLetterRow extends KeptMessage {
  id: string;
  consumer_group: string;
  topic: string;
  msg_offset: string;
  reason: string;
  created_at: Date;
  replayed_at: Date | null;
  replayed_offset: string | null;
}

/** The listing's filters (each optional) and page: newest first, `before` an id (ids only grow). */
export interface DeadLetterFilter {
  topic?: string;
  consumerGroup?: string;
  replayed?: boolean;
  before?: string;
  limit: number;
}

const COLUMNS = "id::text AS id, consumer_group, topic, msg_partition, msg_offset::text AS msg_offset, reason, created_at, replayed_at, replayed_offset::text AS replayed_offset";

/**
 * `limit + 1` rows (kit pageOf tells whether a page follows), without the messages' bytes (a value may
 * be a megabyte); header_count null when msg_headers is no list (not kept, or edited). Ordered by the
 * table's id: a bare `id` would be the text output column ("9" after "10").
 */
type ListedRow = ConsumerDeadLetterRow & { key_bytes: number | null; value_bytes: number | null; header_count: number | null };
export async function listDeadLetters(db: Queryable, f: DeadLetterFilter): Promise<ListedRow[]> {
  const { rows } = await db.query<ListedRow>(
    `SELECT ${COLUMNS}, octet_length(msg_key) AS key_bytes, octet_length(msg_value) AS value_bytes, CASE WHEN json_typeof(msg_headers) = 'array' THEN json_array_length(msg_headers) END AS header_count
       FROM consumer_dead_letters
      WHERE ($1::text IS NULL OR topic = $1) AND ($2::text IS NULL OR consumer_group = $2)
        AND ($3::boolean IS NULL OR (replayed_at IS NOT NULL) = $3) AND ($4::bigint IS NULL OR id < $4)
      ORDER BY consumer_dead_letters.id DESC LIMIT $5`,
    [f.topic ?? null, f.consumerGroup ?? null, f.replayed ?? null, f.before ?? null, f.limit + 1],
  );
  return rows;
}

/** One dead letter with its message's bytes and headers; undefined when there is none. */
export async function deadLetter(db: Queryable, id: string): Promise<ConsumerDeadLetterRow | undefined> {
  const { rows } = await db.query<ConsumerDeadLetterRow>(`SELECT ${COLUMNS}, msg_key, msg_value, msg_headers FROM consumer_dead_letters WHERE id = $1`, [id]);
  return rows[0];
}

export type ReplayOutcome = { replayed: { topic: string; partition: number; offset: string | null } } | { already: Date } | { notReplayable: string } | undefined;

/**
 * Sends dead letter `id`'s message back to its topic and partition (`send`: the producer, acks from
 * every in-sync replica) and marks it replayed, once: the row is locked for the send, so a second
 * replay, even one sent at the same instant, waits and finds it replayed. A failed send leaves it
 * unmarked (replay it again); a commit failing after the send leaves a sent letter unmarked, which a
 * second replay would send again (at least once: the consumers dedupe by event id). Undefined: no
 * such letter.
 */
export async function replayDeadLetter(pg: PostgresClient, id: string, send: (topic: string, m: import("kafkajs").Message) => Promise<string | null>): Promise<ReplayOutcome> {
  return pg.transaction(async (tx) => {
    const l = (await tx.query<ConsumerDeadLetterRow>(`SELECT ${COLUMNS}, msg_key, msg_value, msg_headers FROM consumer_dead_letters WHERE id = $1 FOR UPDATE`, [id])).rows[0];
    if (!l) return undefined;
    if (l.replayed_at) return { already: l.replayed_at };
    const out = replayMessage(l);
    if ("problem" in out) return { notReplayable: out.problem };
    const offset = await send(l.topic, out.message);
    await tx.query("UPDATE consumer_dead_letters SET replayed_at = now(), replayed_offset = $2 WHERE id = $1", [id, offset]);
    return { replayed: { topic: l.topic, partition: l.msg_partition, offset } };
  });
}
