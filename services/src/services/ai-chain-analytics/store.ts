/**
 * The chains in ClickHouse (migrations clickhouse/0005, 0022, 0023, 0024, 0025, 0026, 0027): rows in, aggregates out. Every
 * key is first collapsed with GROUP BY (at-least-once delivery may repeat rows), then decisions are
 * joined with their orders (by decision id AND user: another user's order naming the decision is not
 * its; orderRows() reads both order tables, see there) and fills (18.16: one JOIN per SELECT,
 * `USING`, so the joins nest) and the latest 1-minute close of each symbol (market_candles_latest,
 * migration 0025) marks open positions. The mark was found by a scalar subquery, max(open_time) per
 * symbol over market_candles, which read every candle of the symbols at each summary (session 44).
 *
 * Per model version and strategy:
 *   decisions, trades (buy/sell decisions), orders, fills, filledDecisions
 *   hitRate       filled decisions whose fills are in profit at the mark / filled decisions
 *   pnl           sum of side * (qty * mark - notional) - fees over the fills (PnL attribution)
 *   slippageBps   quantity-weighted side * (fill price - decision price) / decision price, bps
 *   latency       p50 / p95 in ms of
 *                 decision -> order: order created_at - decided_at. decided_at is when ai-orchestrator
 *                 made the decision, recorded (PostgreSQL clock_timestamp()) before it submits the
 *                 order; created_at is order-management's insert of that order (PostgreSQL now(),
 *                 the same server's clock, later by construction). Both travel as epoch ms.
 *                 order -> first fill: the first fill event's updated_at - created_at (both
 *                 order-management's clock; a fill's own ts is market time, not wall time).
 */
import type { ClickHouseKitClient } from "../../kit";
import { decisionOrderRow, decisionRow, fillRow, orderRow } from "./chains";

/**
 * Every order event row with its user: ai_chain_user_orders (0022), and 0005's ai_chain_orders, still
 * written by replicas of the release before 0022 during a rolling deploy, without the user. An old
 * row is taken only when its order is the one ai-orchestrator placed for the decision it names
 * (ai_chain_decision_orders, 0023), and given that decision's user: another user's order naming the
 * decision stays out, and a row waits until its decision's order id is pulled, not dropped. An event
 * in both tables (an old and a new replica both consumed it, or 0022 carried it over) is one order
 * in the reads, which group by order id. `where` (on decision_id) goes inside each branch: 18.16
 * does not push a filter down into a UNION ALL, and both order tables are keyed by decision id first.
 * ai_chain_decision_orders is keyed by order id: it is read for the old table's orders of `where`
 * only (by decision id alone it was read whole, every user's, at each summary and chain).
 */
const orderRows = (where = "1") => `
  SELECT order_id, decision_id, user_id, status, side, created_ms, event_ms FROM ai_chain_user_orders WHERE ${where}
  UNION ALL
  SELECT order_id, decision_id, user_id, status, side, created_ms, event_ms FROM ai_chain_orders
  ANY INNER JOIN (SELECT order_id, decision_id, any(user_id) AS user_id FROM ai_chain_decision_orders
                  WHERE order_id IN (SELECT order_id FROM ai_chain_orders WHERE ${where}) AND ${where} GROUP BY order_id, decision_id)
  USING (order_id, decision_id) WHERE ${where}`;

export interface ChainSummary {
  modelVersion: string;
  strategyId: string;
  decisions: number;
  trades: number;
  orders: number;
  fills: number;
  filledDecisions: number;
  hitRate: number | null;
  pnl: number;
  slippageBps: number | null;
  decisionToOrderMs: { p50: number; p95: number } | null;
  orderToFillMs: { p50: number; p95: number } | null;
}

/**
 * The decisions a summary covers: its time range (and the month partitions it spans, by `day`), its
 * strategy and user when given, a user's from ai_chain_user_decisions (0024, keyed by user and decision
 * instant), every user's from ai_chain_decisions_by_time (0027, keyed by instant): each by the key. The orders, fills and marks are read only for these (by
 * the tables' keys: decision id, order id, symbol): before, every order, fill and 1-minute candle ever
 * recorded, every user's and symbol's, was read by each summary, a trader's included (session 42), and
 * every user's decisions of the range's months (0005's table is keyed by strategy; session 43). The
 * user's condition is in the SQL only when there is one: 18.16's key analysis does not fold
 * `(1 = 1 OR user_id = ...)`, so a parameter switching it off left the key unused.
 */
const decisionsInRange = (byUser: boolean) => `${byUser ? "user_id = {userId:String} AND " : ""}decided_ms >= {fromMs:UInt64} AND decided_ms < {toMs:UInt64}
        AND day >= toDate({fromDay:String}) AND day <= toDate({toDay:String})
        AND ({allStrategies:UInt8} = 1 OR strategy_id = {strategyId:String})`;
/** An instant's UTC day as ClickHouse's Date holds it: clamped to the type's range (1970-01-01 to 2105-12-31). */
const utcDay = (d: Date): string => new Date(Math.min(Math.max(d.getTime(), 0), Date.UTC(2105, 11, 31))).toISOString().slice(0, 10);

/**
 * A user's decisions by the user's key (0024); every user's by instant (0027): by 0024's table, a summary
 * without a user read every user's decisions of the months its range spans (session 45).
 */
const decisionsTable = (byUser: boolean) => (byUser ? "ai_chain_user_decisions" : "ai_chain_decisions_by_time");

/** One row per decision with its orders, fills and the symbol's mark (the nested joins). */
function perDecision(byUser: boolean): string {
  const DECISIONS_IN_RANGE = decisionsInRange(byUser);
  const DECISIONS = decisionsTable(byUser);
  /** `IN (subquery)`: usable by the tables' primary keys on 18.16. */
  const IN_RANGE = `decision_id IN (SELECT decision_id FROM ${DECISIONS} WHERE ${DECISIONS_IN_RANGE})`;
  const SYMBOLS_IN_RANGE = `symbol IN (SELECT symbol FROM ${DECISIONS} WHERE ${DECISIONS_IN_RANGE})`;
  return `
SELECT decision_id, strategy_id, model_version, symbol, action, decided_ms, decision_price, user_id,
       orders, fills, fq, notional, fees, order_ms, fill_ms, mark
FROM (
  SELECT * FROM (
    SELECT decision_id, any(strategy_id) AS strategy_id, any(model_version) AS model_version, any(symbol) AS symbol,
           any(action) AS action, any(decided_ms) AS decided_ms, any(decision_price) AS decision_price, any(user_id) AS user_id
    FROM (
      -- Filtered a level down: the aggregates' aliases above shadow these columns in a WHERE.
      SELECT * FROM ${DECISIONS} WHERE ${DECISIONS_IN_RANGE}
    )
    GROUP BY decision_id
  ) ANY LEFT JOIN (
    SELECT decision_id, user_id, count() AS orders, sum(nfills) AS fills, sum(ofq) AS fq, sum(onotional) AS notional, sum(ofees) AS fees,
           min(created_ms) AS order_ms, min(first_fill_ms) AS fill_ms
    FROM (
      SELECT order_id, decision_id, user_id, created_ms, first_fill_ms, nfills, ofq, onotional, ofees FROM (
        -- max: 0022 carried an order over with no user when its decision was not pulled yet; the
        -- user its decision's order id gives the old table's copy of that row wins.
        SELECT order_id, any(decision_id) AS decision_id, max(user_id) AS user_id, min(created_ms) AS created_ms,
               minIf(event_ms, status IN ('partially_filled', 'filled')) AS first_fill_ms
        FROM (${orderRows(IN_RANGE)}) GROUP BY order_id
      ) ANY LEFT JOIN (
        SELECT order_id, count() AS nfills, sum(q) AS ofq, sum(q * p) AS onotional, sum(f) AS ofees
        FROM (SELECT order_id, fill_id, any(quantity) AS q, any(price) AS p, any(fee) AS f FROM ai_chain_fills
              WHERE order_id IN (SELECT order_id FROM ai_chain_user_orders WHERE ${IN_RANGE} UNION ALL SELECT order_id FROM ai_chain_orders WHERE ${IN_RANGE})
              GROUP BY order_id, fill_id)
        GROUP BY order_id
      ) USING order_id
    )
    GROUP BY decision_id, user_id
  ) USING (decision_id, user_id)
) ANY LEFT JOIN (
  -- Each symbol's latest 1-minute close, kept as candles are written (0025): a row of each part, by the key.
  SELECT symbol, argMaxMerge(last_close) AS mark FROM market_candles_latest
  WHERE timeframe = '1m' AND ${SYMBOLS_IN_RANGE}
  GROUP BY symbol
) USING symbol`;
}

const SIGN = `if(action = 'sell', -1, 1)`;

export class ChainStore {
  constructor(private readonly ch: ClickHouseKitClient) {}

  /**
   * Into 0024's table, whose views (0026, 0027) key them by decision id and by instant too. 0005's
   * ai_chain_decisions is no longer written: this release reads it nowhere, nor does the release before
   * (session 44's, which reads 0024's table); it was written beside 0024's for session 43's predecessor.
   */
  async insertDecisions(rows: ReturnType<typeof decisionRow>[]): Promise<void> {
    if (rows.length) await this.ch.insert("ai_chain_user_decisions", rows);
  }
  async insertDecisionOrders(rows: NonNullable<ReturnType<typeof decisionOrderRow>>[]): Promise<void> {
    if (rows.length) await this.ch.insert("ai_chain_decision_orders", rows);
  }
  async insertOrders(rows: NonNullable<ReturnType<typeof orderRow>>[]): Promise<void> {
    if (rows.length) await this.ch.insert("ai_chain_user_orders", rows);
  }
  async insertFills(rows: ReturnType<typeof fillRow>[]): Promise<void> {
    if (rows.length) await this.ch.insert("ai_chain_fills", rows);
  }

  async summary(q: { from: Date; to: Date; strategyId?: string; userId?: string }): Promise<ChainSummary[]> {
    const rows = await this.ch.query<Record<string, string | number>>(
      `SELECT model_version, strategy_id, toString(count()) AS decisions, toString(countIf(action IN ('buy', 'sell'))) AS trades,
              toString(sum(orders)) AS orders, toString(sum(fills)) AS fills, toString(countIf(fq > 0)) AS filled,
              toString(countIf(fq > 0 AND mark > 0 AND ${SIGN} * (fq * mark - notional) - fees > 0)) AS hits,
              sumIf(${SIGN} * (fq * mark - notional) - fees, fq > 0 AND mark > 0) AS pnl,
              sumIf(${SIGN} * (notional - fq * decision_price) / decision_price * 10000, fq > 0 AND decision_price > 0) AS slip_sum,
              sumIf(fq, fq > 0 AND decision_price > 0) AS slip_qty,
              toString(countIf(order_ms > 0)) AS n_order, quantileIf(0.5)(toInt64(order_ms) - toInt64(decided_ms), order_ms > 0) AS d2o_p50,
              quantileIf(0.95)(toInt64(order_ms) - toInt64(decided_ms), order_ms > 0) AS d2o_p95,
              toString(countIf(fill_ms > 0)) AS n_fill, quantileIf(0.5)(toInt64(fill_ms) - toInt64(order_ms), fill_ms > 0) AS o2f_p50,
              quantileIf(0.95)(toInt64(fill_ms) - toInt64(order_ms), fill_ms > 0) AS o2f_p95
       FROM (${perDecision(!!q.userId)})
       GROUP BY model_version, strategy_id ORDER BY model_version, strategy_id LIMIT 1000`,
      {
        fromMs: q.from.getTime(),
        toMs: q.to.getTime(),
        // The UTC days of the range (a decision's `day` is its decided_ms's, chains.ts), for the partitions.
        fromDay: utcDay(q.from),
        toDay: utcDay(q.to),
        allStrategies: q.strategyId ? 0 : 1,
        strategyId: q.strategyId ?? "",
        userId: q.userId ?? "",
      },
    );
    const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;
    return rows.map((r) => {
      const filled = Number(r.filled);
      const slipQty = Number(r.slip_qty);
      return {
        modelVersion: String(r.model_version),
        strategyId: String(r.strategy_id),
        decisions: Number(r.decisions),
        trades: Number(r.trades),
        orders: Number(r.orders),
        fills: Number(r.fills),
        filledDecisions: filled,
        hitRate: filled ? round(Number(r.hits) / filled) : null,
        pnl: round(Number(r.pnl), 6),
        slippageBps: slipQty > 0 ? round(Number(r.slip_sum) / slipQty, 3) : null,
        decisionToOrderMs: Number(r.n_order) ? { p50: Math.round(Number(r.d2o_p50)), p95: Math.round(Number(r.d2o_p95)) } : null,
        orderToFillMs: Number(r.n_fill) ? { p50: Math.round(Number(r.o2f_p50)), p95: Math.round(Number(r.o2f_p95)) } : null,
      };
    });
  }

  /**
   * One decision's chain from ClickHouse: the decision, its owner's orders' latest states and fills.
   * The decision is read by its id (0026's table, keyed by it), then its owner checked when `userId` (a
   * trader asking for their own) is given: by 0024's table an admin's read every user's decisions ever
   * recorded, a trader's all of their own (session 45). Filtered a level down: the aggregates' aliases
   * shadow the columns in a WHERE.
   */
  async chain(decisionId: string, userId?: string) {
    const decision = await this.ch.query<Record<string, unknown>>(
      `SELECT decision_id, any(strategy_id) AS strategy_id, any(user_id) AS user_id, any(model_version) AS model_version, any(symbol) AS symbol,
              any(action) AS action, any(probability_up) AS probability_up, any(decision_price) AS decision_price, toString(any(decided_ms)) AS decided_ms
       FROM (SELECT * FROM ai_chain_decisions_by_id WHERE decision_id = {id:String}) GROUP BY decision_id`,
      { id: decisionId },
    );
    const d = decision[0];
    if (!d || (userId && d.user_id !== userId)) return undefined;
    const orders = await this.ch.query<{ order_id: string; status: string; side: string }>(
      `SELECT order_id, argMax(status, event_ms) AS status, any(side) AS side FROM (${orderRows("decision_id = {id:String}")})
       WHERE decision_id = {id:String} AND user_id = {owner:String} GROUP BY order_id ORDER BY order_id`,
      { id: decisionId, owner: String(d.user_id) },
    );
    const fills = orders.length
      ? await this.ch.query<{ fill_id: string; order_id: string; quantity: number; price: number; fee: number }>(
          `SELECT fill_id, order_id, any(quantity) AS quantity, any(price) AS price, any(fee) AS fee FROM ai_chain_fills
           WHERE has({orderIds:Array(String)}, order_id) GROUP BY order_id, fill_id ORDER BY order_id, fill_id`,
          { orderIds: orders.map((o) => o.order_id) },
        )
      : [];
    return {
      decision: {
        decisionId: d.decision_id, userId: d.user_id, strategyId: d.strategy_id, modelVersion: d.model_version || null, symbol: d.symbol, action: d.action,
        probabilityUp: d.probability_up, decisionPrice: d.decision_price, decidedAt: new Date(Number(d.decided_ms)).toISOString(),
      },
      orders: orders.map((o) => ({ orderId: o.order_id, status: o.status, side: o.side })),
      fills: fills.map((f) => ({ fillId: f.fill_id, orderId: f.order_id, quantity: f.quantity, price: f.price, fee: f.fee })),
    };
  }
}
