/**
 * Pre-trade risk: limits from the environment and the context (last price, position, daily PnL,
 * recent order times) gathered from the shared stores. Used in-process by order-management (on the
 * hot path, no extra network hop or extra failure mode between accepting an order and its check)
 * and by risk-analyzer's `/check` endpoint, so there is exactly one implementation of the rules
 * (services/src/trading/risk.ts).
 */
import type { Redis } from "ioredis";
import { ConfigError, Type, type Queryable } from "../../kit";
import { D } from "../decimal";
import { executeStatement, textArrayLiteral, type PreparedStatement } from "../../kit/datastores/postgres";
import { lastPriceKey } from "../events";
import { checkOrder, type RiskContext, type RiskDecision, type RiskLimits } from "../risk";
import { parseTradingState, stricter, TRADING_STATE_KEYS, type TradingState } from "../tradingState";
import type { OrderRequest } from "../types";

const dec = (d: string) => Type.String({ default: d, pattern: "^\\d+(\\.\\d+)?$" });

export const riskEnv = {
  RISK_MAX_ORDER_QUANTITY: dec("100"),
  RISK_MAX_ORDER_NOTIONAL: dec("250000"),
  RISK_MAX_POSITION: dec("500"),
  RISK_PRICE_COLLAR_BPS: dec("500"),
  RISK_DAILY_LOSS_LIMIT: dec("50000"),
  // A user's order rate: at most this many orders in the window (100 ms to 1 h: the check counts the
  // user's orders of the window in SQL, so a longer one reads more; a shorter one is no limit).
  RISK_MAX_ORDERS_PER_WINDOW: Type.Integer({ default: 100, minimum: 1, maximum: 100_000 }),
  RISK_RATE_WINDOW_MS: Type.Integer({ default: 1000, minimum: 100, maximum: 3_600_000 }),
  // The smallest order, as notional in quote currency (quantity x limit price, or x the last price for a
  // market order). 1 by default: an order of 0.00000001 paid a fee that rounds to 0 and still took a
  // place in the engine's book; at 1 the paper exchange's 10 bps fee is 0.001, and the order means
  // something (Binance's own floor is 5-10 USDT on most spot pairs). 0 turns the floor off.
  RISK_MIN_ORDER_NOTIONAL: dec("1"),
  // A user's open orders (accepted, partially filled, pending cancel; every symbol and side), at most
  // this many: the next one is refused. The engine keeps every resting order in memory, and the rate
  // window bounds only the pace (100 a second is millions a day). 1 to 100,000: counted in SQL under
  // the user's lock, reading at most this many index entries.
  RISK_MAX_OPEN_ORDERS: Type.Integer({ default: 200, minimum: 1, maximum: 100_000 }),
};

/** The limits of the service's configuration; a floor above the ceiling (every order refused) is a ConfigError naming both. */
export function riskLimitsFrom(service: string, c: { [K in keyof typeof riskEnv]: K extends "RISK_MAX_ORDERS_PER_WINDOW" | "RISK_RATE_WINDOW_MS" | "RISK_MAX_OPEN_ORDERS" ? number : string }): RiskLimits {
  if (D(c.RISK_MIN_ORDER_NOTIONAL).gt(D(c.RISK_MAX_ORDER_NOTIONAL)))
    throw new ConfigError(service, [`RISK_MIN_ORDER_NOTIONAL (${c.RISK_MIN_ORDER_NOTIONAL}) must not exceed RISK_MAX_ORDER_NOTIONAL (${c.RISK_MAX_ORDER_NOTIONAL}): every order would be refused`]);
  return {
    maxOrderQuantity: c.RISK_MAX_ORDER_QUANTITY,
    maxOrderNotional: c.RISK_MAX_ORDER_NOTIONAL,
    maxPosition: c.RISK_MAX_POSITION,
    priceCollarBps: c.RISK_PRICE_COLLAR_BPS,
    dailyLossLimit: c.RISK_DAILY_LOSS_LIMIT,
    maxOrdersPerWindow: c.RISK_MAX_ORDERS_PER_WINDOW,
    rateWindowMs: c.RISK_RATE_WINDOW_MS,
    minOrderNotional: c.RISK_MIN_ORDER_NOTIONAL,
    maxOpenOrders: c.RISK_MAX_OPEN_ORDERS,
  };
}

export type MarketFacts = { lastPrice?: string; tradingState: TradingState };

/** What the pre-trade check needs from Dragonfly: the symbol's last price (written by data-bridge) and
 * the kill switch (global and user), in one MGET. Unreachable or disabled: no price, which rejects
 * every order (NO_REFERENCE_PRICE), so the check still fails closed. */
export async function marketFacts(redis: Redis | undefined, userId: string, symbol: string): Promise<MarketFacts> {
  return (await marketFactsMany(redis, [{ userId, symbol }]))[0];
}

/** marketFacts of many (user, symbol) pairs in one MGET (the prices and states they share read once). */
export async function marketFactsMany(redis: Redis | undefined, pairs: { userId: string; symbol: string }[]): Promise<MarketFacts[]> {
  if (!redis) return pairs.map(() => ({ tradingState: "active" }));
  const symbols = [...new Set(pairs.map((p) => p.symbol))];
  const users = [...new Set(pairs.map((p) => p.userId))];
  try {
    const values = await redis.mget(TRADING_STATE_KEYS.global, ...symbols.map(lastPriceKey), ...users.map(TRADING_STATE_KEYS.user));
    const global = parseTradingState(values[0]);
    const price = new Map(symbols.map((s, i) => [s, values[1 + i] ?? undefined]));
    const state = new Map(users.map((u, i) => [u, parseTradingState(values[1 + symbols.length + i])]));
    return pairs.map((p) => ({ lastPrice: price.get(p.symbol), tradingState: stricter(global, state.get(p.userId)!) }));
  } catch {
    return pairs.map(() => ({ tradingState: "active" }));
  }
}

/** Key space of the per-user order lock (first half of the two-int advisory lock key). */
const ORDER_LOCK_SPACE = 0x6f72; // "or"

/**
 * The per-user order locks: serialize the pre-trade check and the insert of a user's orders across
 * every replica, taken first in the insert's transaction (released at its end), before the exposure
 * is read in it. Answers the transaction's now() (what the rows it inserts get as their default
 * timestamps), so a caller can build them without reading them back. The locks are taken in
 * ascending key order (the key is the hash of the user id, so users sharing a hash share a lock and
 * are taken once): every transaction locking several users takes them in the same order, so two of
 * them never deadlock.
 *
 * One statement without parameters (EXECUTE of LOCK_USERS_ORDERS, which the transaction must have
 * prepared), to send with BEGIN in the same round trip (`PostgresClient.transaction`'s `begin`; parse
 * its rows with `lockedAt`): the submit transaction's first round trip, saved on every order batch.
 * The ids are quoted with pg's escapeLiteral; one holding a NUL byte (which would end the statement's
 * text early) is refused.
 */
export function lockUsersOrdersStatement(userIds: string[]): string {
  return executeStatement(LOCK_USERS_ORDERS, [textArrayLiteral(userIds)]);
}

/** lockUsersOrdersStatement's statement, prepared on the connection (`PostgresClient.transaction`'s `prepared`). */
export const LOCK_USERS_ORDERS: PreparedStatement = {
  name: "order_lock_users",
  params: ["text[]"],
  text: `WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock(${ORDER_LOCK_SPACE}, k) FROM (SELECT DISTINCT hashtext(u) AS k FROM unnest($1) AS u ORDER BY 1) AS keys)
     SELECT now() AS tx_now, (SELECT count(*) FROM locked) AS locks`,
};

/** The transaction's now() from the rows of lockUsersOrdersStatement. */
export function lockedAt(rows: unknown[]): Date {
  const at = (rows[0] as { tx_now?: unknown } | undefined)?.tx_now;
  if (!(at instanceof Date)) throw new Error("the users' lock answered no timestamp");
  return at;
}

export interface RiskFacts {
  position: string;
  openBuy: string;
  openSell: string;
  dailyPnl: string;
  recentOrderTimes: number[];
  /** The user's open orders in every symbol, counted up to the cap asked for (RiskLimits.maxOpenOrders): past it the check refuses anyway. */
  openOrders: number;
  /**
   * The kill switch as PostgreSQL records it (risk-analyzer's trading_states), read in the same
   * statement. Enforced together with Dragonfly's copy (the stricter wins): the copy alone opened a
   * window after a Dragonfly restart (an empty store, or a snapshot older than a halt) in which a
   * halted user could trade until the reconciler re-applied the record. No record is `active`.
   */
  recordedTradingState: TradingState;
}

/**
 * The database facts of the check in one round trip: the position as order-management knows it
 * (signed filled quantity, kept in om_positions by a trigger on its fills), the unexecuted quantity
 * of open orders per side, today's realized PnL net of fees (portfolio-manager's fills of the UTC
 * day, kept in pm_daily_pnl by a trigger on pm_fills) and
 * the user's order times inside the rate window, and the number of the user's open orders (every
 * symbol; from om_orders_open, reading at most `openCap` entries).
 * Read inside the transaction that holds the users' locks (`lockUsersOrdersStatement`), so no concurrent order of the user is missed.
 */
export async function riskFacts(db: Queryable, userId: string, symbol: string, windowMs: number, openCap: number): Promise<RiskFacts> {
  return (await riskFactsMany(db, [{ userId, symbol }], windowMs, openCap))[0];
}

/**
 * The facts' statement over (user, symbol) text[], a window in ms and the open orders' cap, given as
 * SQL expressions. What belongs to the user alone (today's PnL, the order times of the window, the
 * open orders in every symbol, the user's trading state) is read once per user in `per_user`, however
 * many of the user's symbols the batch holds (it was read again for each pair); the position and the
 * open exposure per pair.
 */
const riskFactsSql = (users: string, symbols: string, windowMs: string, openCap: string) => `WITH
     pairs AS MATERIALIZED (SELECT * FROM unnest(${users}, ${symbols}) WITH ORDINALITY AS k(u, s, n)),
     per_user AS MATERIALIZED (
       SELECT d.u,
         coalesce((SELECT net FROM pm_daily_pnl WHERE user_id = d.u AND day = (now() AT TIME ZONE 'UTC')::date), 0)::text AS p,
         (SELECT array_agg((extract(epoch FROM created_at) * 1000)::bigint::text) FROM om_orders
           WHERE user_id = d.u AND created_at > now() - make_interval(secs => ${windowMs}::double precision / 1000)) AS t,
         -- the user's open orders in every symbol (om_orders_open's leading column), at most the cap of them read
         (SELECT count(*) FROM (SELECT 1 FROM om_orders WHERE user_id = d.u AND status IN ('accepted', 'partially_filled', 'pending_cancel') LIMIT ${openCap}) AS o)::int AS oc,
         (SELECT state FROM trading_states WHERE scope = 'user:' || d.u) AS us
       FROM (SELECT DISTINCT u FROM pairs) AS d)
     SELECT
       now() AS tx_now,
       coalesce((SELECT quantity FROM om_positions WHERE user_id = k.u AND symbol = k.s), 0)::text AS q,
       exposure.ob, exposure.os, pu.p, pu.t, pu.oc,
       (SELECT state FROM trading_states WHERE scope = 'global') AS gs,
       pu.us
     FROM pairs AS k JOIN per_user AS pu ON pu.u = k.u
     -- both sides' open exposure from one scan of the user's open orders in the symbol
     CROSS JOIN LATERAL (
       SELECT coalesce(sum(quantity - filled_quantity) FILTER (WHERE side = 'buy'), 0)::text AS ob,
              coalesce(sum(quantity - filled_quantity) FILTER (WHERE side = 'sell'), 0)::text AS os
         FROM om_orders WHERE user_id = k.u AND symbol = k.s AND status IN ('accepted', 'partially_filled', 'pending_cancel')) AS exposure
     ORDER BY k.n`;

type RiskFactsRow = { q: string; ob: string; os: string; p: string; t: string[] | null; oc: number; gs: string | null; us: string | null };

/** riskFacts of many (user, symbol) pairs in one statement, in the order of `pairs`. */
export async function riskFactsMany(db: Queryable, pairs: { userId: string; symbol: string }[], windowMs: number, openCap: number): Promise<RiskFacts[]> {
  const { rows } = await db.query<RiskFactsRow>(riskFactsSql("$1::text[]", "$2::text[]", "$3", "$4::bigint"), [pairs.map((p) => p.userId), pairs.map((p) => p.symbol), windowMs, openCap]);
  return riskFactsOf(rows);
}

/**
 * riskFactsMany as a statement of literals (EXECUTE of RISK_FACTS, which the transaction must have
 * prepared), to send after lockUsersOrdersStatement in the round trip of BEGIN
 * (`PostgresClient.transaction`'s `begin`; parse its rows with riskFactsOf). It is a statement
 * of its own, so it reads with a snapshot taken after the locks were granted: a concurrent order of
 * the user that committed while this one waited for the lock is counted. The ids and symbols are
 * quoted with pg's escapeLiteral.
 */
export function riskFactsStatement(pairs: { userId: string; symbol: string }[], windowMs: number, openCap: number): string {
  if (!Number.isSafeInteger(windowMs) || windowMs < 0) throw new Error(`bad rate window ${windowMs}`);
  if (!Number.isSafeInteger(openCap) || openCap < 0) throw new Error(`bad open orders cap ${openCap}`);
  return executeStatement(RISK_FACTS, [textArrayLiteral(pairs.map((p) => p.userId)), textArrayLiteral(pairs.map((p) => p.symbol)), String(windowMs), String(openCap)]);
}

/** riskFactsStatement's statement, prepared on the connection (`PostgresClient.transaction`'s `prepared`). */
export const RISK_FACTS: PreparedStatement = { name: "order_risk_facts", params: ["text[]", "text[]", "bigint", "bigint"], text: riskFactsSql("$1", "$2", "$3", "$4") };

/** RiskFacts from the rows of riskFactsMany's statement (or riskFactsStatement's), in the order asked. */
export function riskFactsOf(rows: unknown[]): RiskFacts[] {
  return (rows as RiskFactsRow[]).map((f) => ({
    position: f.q, openBuy: f.ob, openSell: f.os, dailyPnl: f.p, recentOrderTimes: (f.t ?? []).map(Number), openOrders: Number(f.oc),
    recordedTradingState: stricter(parseTradingState(f.gs), parseTradingState(f.us)),
  }));
}

/** The check's context from the database facts and Dragonfly's: the stricter of the two trading states. */
export function contextOf({ recordedTradingState, ...facts }: RiskFacts, market: MarketFacts, now: number): RiskContext {
  return { ...facts, ...market, tradingState: stricter(market.tradingState, recordedTradingState), now };
}

export async function gatherRiskContext(db: Queryable, redis: Redis | undefined, userId: string, symbol: string, limits: Pick<RiskLimits, "rateWindowMs" | "maxOpenOrders">): Promise<RiskContext> {
  const [market, facts] = await Promise.all([marketFacts(redis, userId, symbol), riskFacts(db, userId, symbol, limits.rateWindowMs, limits.maxOpenOrders)]);
  return contextOf(facts, market, Date.now());
}

/** The check as a what-if (risk-analyzer's /check): no lock, nothing written. order-management runs
 * the same steps under `lockUserOrders` in the insert's transaction. */
export async function preTradeCheck(
  db: Queryable,
  redis: Redis | undefined,
  order: Pick<OrderRequest, "userId" | "symbol" | "side" | "type" | "quantity" | "limitPrice">,
  limits: RiskLimits,
): Promise<{ decision: RiskDecision; context: RiskContext }> {
  const context = await gatherRiskContext(db, redis, order.userId, order.symbol, limits);
  return { decision: checkOrder(order, context, limits), context };
}
