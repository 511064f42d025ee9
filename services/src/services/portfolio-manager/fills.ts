/**
 * Applies a batch of fills from `trading.executions` in one transaction. Position rows are created
 * if missing, then locked in a fixed order (so concurrent replicas serialise per user/symbol without
 * deadlocks), fills already recorded are skipped (checked after the lock, so a concurrent duplicate
 * is seen), the rest are applied in order with decimal arithmetic and written with set-based
 * statements. Applying a fill is idempotent: pm_fills has the fill id as primary key.
 */
import type { Queryable } from "../../kit";
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
