/**
 * The trading state (kill switch) as the platform's services read it: per user and global, one of
 *   active       orders allowed
 *   reduce_only  only orders that shrink an open position
 *   halted       no new orders
 * Stored in Dragonfly under `trading:state:global` and `trading:state:user:<userId>` (a missing key
 * is `active`; an unknown value is treated as `halted`, the safe reading). The effective state is
 * the stricter of the two. order-management enforces it in the pre-trade check (risk.ts: halted
 * rejects every order, reduce_only every order that would not shrink the position) and on the orders
 * already open (order-management/kill-switch.ts requests the cancel of those the state no longer
 * allows, read from the PostgreSQL record); the trading-engine fills no order of a halted scope once
 * the halt has committed (KILL_SWITCH_LOCK below; services/trading-engine/halts.ts); the AI
 * orchestrator reads it too. This module is the shared contract; the only writer is risk-analyzer's
 * audited kill switch (services/risk-analyzer/kill-switch.ts: PostgreSQL record, this copy).
 */
import type { Redis } from "ioredis";

export const TRADING_STATES = ["active", "reduce_only", "halted"] as const;
export type TradingState = (typeof TRADING_STATES)[number];

export const TRADING_STATE_KEYS = {
  global: "trading:state:global",
  user: (userId: string) => `trading:state:user:${userId}`,
} as const;

/**
 * The PostgreSQL advisory lock (two-int key space; "ks") that orders a change of the record
 * (trading_states) against the trading-engine's batches: risk-analyzer's change transaction takes it
 * exclusively before it writes, each engine batch that may fill takes it shared and only then reads
 * the halted scopes. A batch that read the state before a halt therefore commits before the halt
 * does (the halt waits for it); once the halt has committed, every later batch sees it.
 */
export const KILL_SWITCH_LOCK = { space: 0x6b73, key: 0 } as const;

const rank: Record<TradingState, number> = { active: 0, reduce_only: 1, halted: 2 };

/** A stored value as a state: missing is `active`, anything unknown `halted` (the safe reading). */
export function parseTradingState(v: string | null): TradingState {
  if (v === null || v === "active") return "active";
  if (v === "reduce_only" || v === "halted") return v;
  return "halted";
}

export function stricter(a: TradingState, b: TradingState): TradingState {
  return rank[a] >= rank[b] ? a : b;
}

export async function tradingStateFor(redis: Redis, userId: string): Promise<{ effective: TradingState; global: TradingState; user: TradingState }> {
  const [g, u] = await redis.mget(TRADING_STATE_KEYS.global, TRADING_STATE_KEYS.user(userId));
  const global = parseTradingState(g);
  const user = parseTradingState(u);
  return { effective: stricter(global, user), global, user };
}
