/**
 * portfolio-manager's rules, without I/O: which positions a batch of fills touches (in a fixed
 * lock order) and what applying the new fills does to those positions and to cash.
 */
import { ZERO, type Decimal } from "../../trading/decimal";
import { applyFillToPosition } from "../../trading/portfolio";
import type { Fill } from "../../trading/types";

export interface PositionState {
  quantity: Decimal;
  avgPrice: Decimal;
  realizedPnl: Decimal;
  fees: Decimal;
}
export type PositionKey = readonly [userId: string, symbol: string];

export const positionKey = (userId: string, symbol: string) => `${userId}|${symbol}`;

/** Distinct fills of a batch (a redelivery inside one batch counts once). */
export const distinctFills = (batch: Fill[]): Fill[] => [...new Map(batch.map((f) => [f.fillId, f])).values()];

/** The (user, symbol) pairs of the fills, sorted: locking in this order avoids deadlocks between replicas. */
export function positionKeys(fills: Fill[]): PositionKey[] {
  return [...new Map(fills.map((f) => [positionKey(f.userId, f.symbol), [f.userId, f.symbol] as const])).values()].sort((a, b) =>
    a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1,
  );
}

/** One recorded fill: id, order, user, symbol, side, quantity, price, fee, realized PnL delta, cash delta, ts. */
export type FillRecord = [string, string, string, string, string, string, string, string, string, string, number];

/**
 * Applies, in order, the fills not yet applied (`applied`) to the locked positions (by
 * `positionKey`). Returns the fill records to insert, the positions that changed (in `keys` order)
 * and each user's cash delta (users sorted).
 */
export function applyFillBatch(fills: Fill[], keys: PositionKey[], locked: Map<string, PositionState>, applied: Set<string>) {
  const pos = new Map(locked);
  const cash = new Map<string, Decimal>();
  const records: FillRecord[] = [];
  for (const f of fills) {
    if (applied.has(f.fillId)) continue; // already applied: idempotent
    const k = positionKey(f.userId, f.symbol);
    const r = applyFillToPosition(pos.get(k)!, f);
    pos.set(k, { quantity: r.quantity, avgPrice: r.avgPrice, realizedPnl: r.realizedPnl, fees: r.fees });
    cash.set(f.userId, (cash.get(f.userId) ?? ZERO).plus(r.cashDelta));
    records.push([f.fillId, f.orderId, f.userId, f.symbol, f.side, f.quantity, f.price, f.fee, r.realizedDelta.toFixed(), r.cashDelta.toFixed(), f.ts]);
  }
  const touched = keys.filter(([u, s]) => records.some((r) => r[2] === u && r[3] === s));
  return {
    records,
    positions: touched.map((key) => ({ key, state: pos.get(positionKey(key[0], key[1]))! })),
    cash: [...cash.keys()].sort().map((userId) => ({ userId, delta: cash.get(userId)!.toFixed() })),
  };
}

/** One symbol's totals over every account, as PostgreSQL sums them (NUMERIC as text). */
export interface SymbolTotalsRow {
  symbol: string;
  realized_pnl: string;
  fees: string;
  open_positions: number;
}
/** What the portfolio gauges report: the same platform-wide figures on every replica. */
export interface PortfolioTotals {
  bySymbol: Array<{ symbol: string; realizedPnl: number; fees: number }>;
  openPositions: number;
}

/** The gauges' figures from the per-symbol sums (quote currency; a gauge is a float). */
export function portfolioTotals(rows: SymbolTotalsRow[]): PortfolioTotals {
  return {
    bySymbol: rows.map((r) => ({ symbol: r.symbol, realizedPnl: Number(r.realized_pnl), fees: Number(r.fees) })),
    openPositions: rows.reduce((n, r) => n + r.open_positions, 0),
  };
}
