/**
 * Applies a batch of fills from `trading.executions` in one transaction. Position rows are created
 * if missing, then locked in a fixed order (so concurrent replicas serialise per user/symbol without
 * deadlocks), fills already recorded are skipped (checked after the lock, so a concurrent duplicate
 * is seen), the rest are applied in order with decimal arithmetic and written with set-based
 * statements. Applying a fill is idempotent: pm_fills has the fill id as primary key.
 *
 * Two round trips to PostgreSQL whatever the batch: the reads (data.readStatements) travel with
 * BEGIN, the writes (data.writeStatements) with COMMIT. They were nine (BEGIN, seven statements one
 * at a time, COMMIT): at 200 orders/s, with a batch of about a dozen fills every 60 ms, the round
 * trips, each a wake-up of both processes, were most of what a batch cost.
 */
import type { PostgresClient, Queryable } from "../../kit";
import type { Fill } from "../../trading/types";
import * as data from "./data";
import { applyFillBatch, distinctFills, positionKeys } from "./domain";

/** The statements of applying `batch`: the reads, and the writes their answers call for (none when every fill was applied before). */
function plan(batch: Fill[], initialCash: string) {
  const fills = distinctFills(batch);
  const keys = positionKeys(fills);
  return {
    reads: fills.length === 0 ? undefined : data.readStatements(keys, fills.map((f) => f.fillId), initialCash),
    /** From the reads' answers (in their order): the writes and how many fills they apply. */
    writes(answers: unknown[][]): { statements?: string[]; applied: number } {
      const outcome = applyFillBatch(fills, keys, data.lockedPositionsOf(answers[2]), data.appliedFillIdsOf(answers[3]));
      if (outcome.records.length === 0) return { applied: 0 };
      return { statements: data.writeStatements(outcome.records, outcome.positions, outcome.cash), applied: outcome.records.length };
    },
  };
}

/** The answers of a multi-statement query, one list of rows per statement. */
const rowsOfEach = (answer: unknown): unknown[][] => (answer as { rows: unknown[] }[]).map((r) => r.rows);

/** Applies `batch` in the transaction `tx` is in (the caller's BEGIN and COMMIT); returns how many fills were applied (0 for a batch of duplicates). */
export async function applyFills(tx: Queryable, batch: Fill[], initialCash: string): Promise<number> {
  const p = plan(batch, initialCash);
  if (!p.reads) return 0;
  const w = p.writes(rowsOfEach(await tx.query(p.reads.join(";\n"))));
  if (w.statements) await tx.query(w.statements.join(";\n"));
  return w.applied;
}

/**
 * Applies `batch` in a transaction of its own, in two round trips (the reads with BEGIN, the writes
 * with COMMIT); `retryConflicts` as the kit's transaction takes it. Returns how many fills were applied.
 */
export async function applyFillsInTransaction(pg: PostgresClient, batch: Fill[], initialCash: string, retryConflicts: number): Promise<number> {
  const p = plan(batch, initialCash);
  if (!p.reads) return 0;
  return pg.transaction(async (_tx, _last, answers, commitWith) => {
    const w = p.writes(answers);
    if (w.statements) await commitWith(w.statements.join(";\n"));
    return w.applied;
  }, { begin: p.reads.join(";\n"), retryConflicts });
}
