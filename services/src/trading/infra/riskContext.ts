/**
 * Pre-trade risk: limits from the environment and the context (last price, position, daily PnL,
 * recent order times) gathered from the shared stores. Used in-process by order-management (on the
 * hot path, no extra network hop or extra failure mode between accepting an order and its check)
 * and by risk-analyzer's `/check` endpoint, so there is exactly one implementation of the rules
 * (services/src/trading/risk.ts).
 */
import type { Pool } from "pg";
import type { Redis } from "ioredis";
import { Type } from "../../kit";
import { lastPriceKey } from "../events";
import { checkOrder, type RiskContext, type RiskDecision, type RiskLimits } from "../risk";
import type { OrderRequest } from "../types";

const dec = (d: string) => Type.String({ default: d, pattern: "^\\d+(\\.\\d+)?$" });

export const riskEnv = {
  RISK_MAX_ORDER_QUANTITY: dec("100"),
  RISK_MAX_ORDER_NOTIONAL: dec("250000"),
  RISK_MAX_POSITION: dec("500"),
  RISK_PRICE_COLLAR_BPS: dec("500"),
  RISK_DAILY_LOSS_LIMIT: dec("50000"),
  RISK_MAX_ORDERS_PER_WINDOW: Type.Integer({ default: 100, minimum: 1 }),
  RISK_RATE_WINDOW_MS: Type.Integer({ default: 1000, minimum: 1 }),
};

export function riskLimitsFrom(c: { [K in keyof typeof riskEnv]: K extends "RISK_MAX_ORDERS_PER_WINDOW" | "RISK_RATE_WINDOW_MS" ? number : string }): RiskLimits {
  return {
    maxOrderQuantity: c.RISK_MAX_ORDER_QUANTITY,
    maxOrderNotional: c.RISK_MAX_ORDER_NOTIONAL,
    maxPosition: c.RISK_MAX_POSITION,
    priceCollarBps: c.RISK_PRICE_COLLAR_BPS,
    dailyLossLimit: c.RISK_DAILY_LOSS_LIMIT,
    maxOrdersPerWindow: c.RISK_MAX_ORDERS_PER_WINDOW,
    rateWindowMs: c.RISK_RATE_WINDOW_MS,
  };
}

/** Last price from Dragonfly (written by data-bridge); undefined when unknown or unreachable (fail closed). */
export async function lastPrice(redis: Redis | undefined, symbol: string): Promise<string | undefined> {
  if (!redis) return undefined;
  try {
    return (await redis.get(lastPriceKey(symbol))) ?? undefined;
  } catch {
    return undefined;
  }
}

export async function gatherRiskContext(pool: Pool, redis: Redis | undefined, userId: string, symbol: string, windowMs: number): Promise<RiskContext> {
  // One round trip for the three database facts (plus one to Dragonfly, concurrently):
  //  - position as order-management knows it: signed filled quantity of the user's orders;
  //  - today's realized PnL net of fees, from portfolio-manager's applied fills (UTC day);
  //  - the user's order times inside the rate window.
  const [price, facts] = await Promise.all([
    lastPrice(redis, symbol),
    pool.query<{ q: string; p: string; t: string[] | null }>(
      `SELECT
         (SELECT coalesce(sum(CASE WHEN side = 'buy' THEN filled_quantity ELSE -filled_quantity END), 0)::text
            FROM om_orders WHERE user_id = $1 AND symbol = $2 AND filled_quantity > 0) AS q,
         (SELECT coalesce(sum(realized_pnl - fee), 0)::text FROM pm_fills
           WHERE user_id = $1 AND fill_ts >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS p,
         (SELECT array_agg((extract(epoch FROM created_at) * 1000)::bigint::text) FROM om_orders
           WHERE user_id = $1 AND created_at > now() - make_interval(secs => $3::double precision / 1000)) AS t`,
      [userId, symbol, windowMs],
    ),
  ]);
  const f = facts.rows[0];
  return {
    lastPrice: price,
    position: f?.q ?? "0",
    dailyPnl: f?.p ?? "0",
    recentOrderTimes: (f?.t ?? []).map(Number),
    now: Date.now(),
  };
}

export async function preTradeCheck(
  pool: Pool,
  redis: Redis | undefined,
  order: Pick<OrderRequest, "userId" | "symbol" | "side" | "type" | "quantity" | "limitPrice">,
  limits: RiskLimits,
): Promise<{ decision: RiskDecision; context: RiskContext }> {
  const context = await gatherRiskContext(pool, redis, order.userId, order.symbol, limits.rateWindowMs);
  return { decision: checkOrder(order, context, limits), context };
}
