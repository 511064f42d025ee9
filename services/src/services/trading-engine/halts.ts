/**
 * The kill switch at the trading-engine: no fill for an order whose owner is halted (`user:<id>`),
 * nor for any order while the platform is (`global`), once the halt has committed. risk-analyzer's
 * change transaction takes KILL_SWITCH_LOCK exclusively before it writes trading_states; a batch that
 * may fill takes it shared in the round trip that carries its BEGIN and then reads the halted scopes
 * (READ COMMITTED: that statement's snapshot is taken after the lock was granted). So a batch that
 * read the state before a halt holds the halt back until it commits, and every batch after the halt
 * has committed sees it. `reduce_only` is left to order-management (the pre-trade check and the
 * sweep): only `halted` stops fills here.
 */
import { KILL_SWITCH_LOCK } from "../../trading/tradingState";

/** The statements sent with BEGIN (their results come first, in this order): the shared lock, then the halted scopes (begunEach[1]). */
export const HALTS_STATEMENTS = `SELECT pg_advisory_xact_lock_shared(${KILL_SWITCH_LOCK.space}, ${KILL_SWITCH_LOCK.key}); SELECT scope FROM trading_states WHERE state = 'halted'`;

/** Whether an owner's orders may not fill in this batch. */
export type Halted = (userId: string) => boolean;

export const NOTHING_HALTED: Halted = () => false;

/** The halted scopes HALTS_STATEMENTS answered, as a test of an order's owner. */
export function haltedOf(rows: { scope?: unknown }[]): Halted {
  const scopes = new Set(rows.map((r) => String(r.scope)));
  if (scopes.has("global")) return () => true;
  if (scopes.size === 0) return NOTHING_HALTED;
  return (userId) => scopes.has(`user:${userId.toLowerCase()}`);
}
