/**
 * Applies a batch of fills from `trading.executions` in one transaction. Position rows are created
 * if missing, then locked in a fixed order (so concurrent replicas serialise per user/symbol without
 * deadlocks), fills already recorded are skipped (checked after the lock, so a concurrent duplicate
 * is seen), the rest are applied in order with decimal arithmetic and written with set-based
 * statements. Applying a fill is idempotent: pm_fills has the fill id as primary key.
 *
 * The consumer runs it as two round trips (`applyFillsBatch`): the creation, the lock and the read
 * travel with BEGIN, the writes with COMMIT (prepared statements, data.ts). It was nine, one per
 * statement with BEGIN and COMMIT, for every batch. `applyFills` runs the same statements one at a
 * time in a transaction of the caller's.
 */
import type { PostgresClient, Queryable } from "../../kit";
import type { Fill } from "../../trading/types";
import * as data from "./data";
import { applyFillBatch, distinctFills, positionKeys } from "./domain";

/** Returns how many fills were applied (0 for a batch of duplicates). */
export async function applyFills(tx: Queryable, batch: Fill[], initialCash: string): Promise<number> {
  const fills = distinctFills(batch);
  if (fills.length === 0) return 0;
  const keys = positionKeys(fills);
  await data.ensureAccountsAndPositions(tx, keys, initialCash);
  const locked = await data.lockPositions(tx, keys);
  const applied = await data.appliedFillIds(tx, fills.map((f) => f.fillId));
  const outcome = applyFillBatch(fills, keys, locked, applied);
  if (outcome.records.length === 0) return 0;
  await data.insertFills(tx, outcome.records);
  await data.updatePositions(tx, outcome.positions);
  await data.addCash(tx, outcome.cash);
  return outcome.records.length;
}

/**
 * applyFills in a transaction of its own, in two round trips. A deadlock or serialization failure
 * runs the whole transaction again, up to `retryConflicts` times (the kit's transaction).
 */
export async function applyFillsBatch(pg: PostgresClient, batch: Fill[], initialCash: string, retryConflicts = 0): Promise<number> {
  const fills = distinctFills(batch);
  if (fills.length === 0) return 0;
  const keys = positionKeys(fills);
  const begin = data.lockStatements(keys, initialCash, fills.map((f) => f.fillId));
  return pg.transaction(async (_tx, appliedRows, begunEach, commitWith) => {
    const locked = data.lockedPositions(begunEach[2] as Parameters<typeof data.lockedPositions>[0]);
    const outcome = applyFillBatch(fills, keys, locked, new Set(appliedRows.map((r) => String(r.fill_id))));
    if (outcome.records.length === 0) return 0;
    await commitWith(data.writeStatements(outcome.records, outcome.positions, outcome.cash).join(";\n"));
    return outcome.records.length;
  }, { begin: begin.join(";\n"), prepared: data.FILLS_PREPARED, retryConflicts });
}
