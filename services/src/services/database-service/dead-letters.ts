/**
 * database-service's data access to the Kafka consumers' dead letters in PostgreSQL
 * (`consumer_dead_letters`: migrations 0195, 0496, 0489, 0505; written by trading/infra/deadLetters.ts):
 * listing them for an operator and replaying one once its cause was fixed (./dead-letter-replay.ts).
 */
import { deleteOlderThanDays, type Queryable } from "../../kit";
import { replayMessage, type KeptMessage } from "../../trading/infra/deadLetters";
import type { LetterReplays } from "./dead-letter-replay";

export interface ConsumerDeadLetterRow extends KeptMessage {
  id: string;
  consumer_group: string;
  topic: string;
  msg_offset: string;
  reason: string;
  created_at: Date;
  replayed_at: Date | null;
  replayed_offset: string | null;
  replay_claimed_at: Date | null;
}

/** The listing's filters (each optional) and page: newest first, `before` an id (ids only grow). */
export interface DeadLetterFilter {
  topic?: string;
  consumerGroup?: string;
  replayed?: boolean;
  before?: string;
  limit: number;
}

const COLUMNS = "id::text AS id, consumer_group, topic, msg_partition, msg_offset::text AS msg_offset, reason, created_at, replayed_at, replayed_offset::text AS replayed_offset, replay_claimed_at";

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

const CLAIM_AGE = "(extract(epoch FROM now() - replay_claimed_at) * 1000)::float8 AS claim_age_ms";

/**
 * PostgreSQL's letters as a replay claims and marks them (./dead-letter-replay.ts; columns of
 * migrations 0489 and 0505). Each statement commits alone: nothing is held while the message is sent.
 * Two claims at the same instant: the second waits for the first's row lock, then finds the claim
 * taken (READ COMMITTED re-reads the row's new version) and claims nothing.
 */
export function postgresLetterReplays(db: Queryable): LetterReplays {
  return {
    async letter(id) {
      const l = (await db.query<ConsumerDeadLetterRow & { claim_age_ms: number | null }>(`SELECT ${COLUMNS}, msg_key, msg_value, msg_headers, ${CLAIM_AGE} FROM consumer_dead_letters WHERE id = $1`, [id])).rows[0];
      if (!l) return undefined;
      const out = replayMessage(l);
      return { consumerGroup: l.consumer_group, topic: l.topic, partition: l.msg_partition, offset: l.msg_offset, replayedAt: l.replayed_at, claimAgeMs: l.claim_age_ms, message: "problem" in out ? { problem: out.problem } : out };
    },
    async claim(id, _letter, claim, claimStaleMs) {
      const r = await db.query(
        `UPDATE consumer_dead_letters SET replay_claim = $2, replay_claimed_at = now()
          WHERE id = $1 AND replayed_at IS NULL AND (replay_claim IS NULL OR replay_claimed_at <= now() - $3 * interval '1 millisecond')`,
        [id, claim, claimStaleMs],
      );
      return (r.rowCount ?? 0) > 0;
    },
    async mark(id, offset) {
      await db.query("UPDATE consumer_dead_letters SET replayed_at = now(), replayed_offset = $2, replay_claim = NULL, replay_claimed_at = NULL WHERE id = $1 AND replayed_at IS NULL", [id, offset]);
    },
    async release(id, claim) {
      await db.query("UPDATE consumer_dead_letters SET replay_claim = NULL, replay_claimed_at = NULL WHERE id = $1 AND replay_claim = $2", [id, claim]);
    },
  };
}

/**
 * One retention pass: up to `batch` letters replayed longer ago than `days` deleted, oldest replay first
 * (migration 0513's partial index), skipping rows another replica's pass or a replay holds. A letter not
 * replayed is never due: its message has reached no consumer yet. Answers how many went.
 */
export const deleteReplayedLetters = (db: Queryable, days: number, batch: number): Promise<number> =>
  deleteOlderThanDays(db, { table: "consumer_dead_letters", key: "id", at: "replayed_at" }, days, batch);
