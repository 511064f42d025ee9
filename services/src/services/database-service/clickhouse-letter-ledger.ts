/**
 * database-service's data access to the replay ledger of ClickHouse's dead letters, in PostgreSQL
 * (`ch_dead_letter_replays`, migrations/postgres 0506 and 0514; the letters themselves:
 * ./clickhouse-dead-letters.ts): a letter's replay state, its claim, mark and release.
 *
 * A row is a letter's, by its id and created_at (ClickHouse's, to the second). A message can be set
 * aside again under its id once retention deleted its letter (its group's offsets reset: read again,
 * failed again): a new letter, not replayed until a replay of its own, recorded in a row of its own.
 * Before session 60 a row was the id's alone: the new letter read as replayed while the old letter's
 * row was kept (its replay refused) and as not replayed once retention pruned that row.
 */
import type { Queryable } from "../../kit";
import type { LetterReplays, ReplayableLetter } from "./dead-letter-replay";

export interface LedgerRow {
  letter_id: string;
  replayed_at: Date | null;
  replayed_offset: string | null;
  replay_claimed_at: Date | null;
  claim_age_ms: number | null;
}
const LEDGER = "r.letter_id, replayed_at, replayed_offset::text AS replayed_offset, replay_claimed_at, (extract(epoch FROM now() - replay_claimed_at) * 1000)::float8 AS claim_age_ms";
/**
 * Whether ledger row `r`, written before migration 0514 (no created_at), is the row of the letter
 * set aside at `at`: the letter is older than the row's replay (or claim), an hour given for the
 * clocks (a row's time is PostgreSQL's, a letter's its writer's); a later letter is a new one.
 */
const EARLIER_ROW_OF = (at: string) => `(r.letter_created_at IS NULL AND ${at} <= coalesce(r.replayed_at, r.replay_claimed_at) + interval '1 hour')`;

/** The ledger rows of `letters` (id, and created_at as ISO text), by id: each letter's own row, or one written before 0514 that is its. */
export async function ledgerRows(pg: Queryable, letters: Array<{ id: string; createdAt: string }>): Promise<Map<string, LedgerRow>> {
  if (letters.length === 0) return new Map();
  const { rows } = await pg.query<LedgerRow>(
    `SELECT DISTINCT ON (r.letter_id) ${LEDGER}
       FROM unnest($1::text[], $2::timestamptz[]) AS l(id, set_aside_at)
       JOIN ch_dead_letter_replays r ON r.letter_id = l.id AND (r.letter_created_at = l.set_aside_at OR ${EARLIER_ROW_OF("l.set_aside_at")})
      ORDER BY r.letter_id, r.letter_created_at NULLS LAST`,
    [letters.map((l) => l.id), letters.map((l) => l.createdAt)],
  );
  return new Map(rows.map((r) => [r.letter_id, r]));
}

/**
 * The claim, mark and release of ClickHouse's letters (the letter is read by the caller), one
 * statement each. Two claims at the same instant: the second's insert waits for the first's, then
 * takes the conflict's path, whose condition the first's claim fails. A claim first gives a row
 * written before 0514 that is the letter's its created_at, so the letter has one row.
 */
export function ledgerClaims(pg: Queryable): Omit<LetterReplays, "letter"> {
  return {
    async claim(id, letter, claim, claimStaleMs) {
      const at = setAsideAt(letter);
      await pg.query(
        `UPDATE ch_dead_letter_replays r SET letter_created_at = $2 WHERE letter_id = $1 AND ${EARLIER_ROW_OF("$2::timestamptz")}
            AND NOT EXISTS (SELECT 1 FROM ch_dead_letter_replays WHERE letter_id = $1 AND letter_created_at = $2)`,
        [id, at],
      );
      const r = await pg.query(
        `INSERT INTO ch_dead_letter_replays AS r (letter_id, letter_created_at, consumer_group, topic, msg_partition, msg_offset, replay_claim, replay_claimed_at)
         VALUES ($1, $8, $2, $3, $4, $5, $6, now())
         ON CONFLICT (letter_id, letter_created_at) DO UPDATE SET replay_claim = EXCLUDED.replay_claim, replay_claimed_at = now()
          WHERE r.replayed_at IS NULL AND (r.replay_claim IS NULL OR r.replay_claimed_at <= now() - $7 * interval '1 millisecond')`,
        [id, letter.consumerGroup, letter.topic, letter.partition, letter.offset, claim, claimStaleMs, at],
      );
      return (r.rowCount ?? 0) > 0;
    },
    async mark(id, offset, letter) {
      await pg.query(
        "UPDATE ch_dead_letter_replays SET replayed_at = now(), replayed_offset = $2, replay_claim = NULL, replay_claimed_at = NULL WHERE letter_id = $1 AND letter_created_at = $3 AND replayed_at IS NULL",
        [id, offset, setAsideAt(letter)],
      );
    },
    async release(id, claim) {
      await pg.query("UPDATE ch_dead_letter_replays SET replay_claim = NULL, replay_claimed_at = NULL WHERE letter_id = $1 AND replay_claim = $2", [id, claim]);
    },
  };
}

/** The letter's created_at, which its ledger row is keyed by: this store's letters all have one. */
function setAsideAt(letter: ReplayableLetter): string {
  if (letter.setAsideAt === undefined) throw new TypeError("a ClickHouse letter without its created_at");
  return letter.setAsideAt;
}
