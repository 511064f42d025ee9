/**
 * A strategy's book: its position per symbol, the unfilled quantity of its working orders, and the
 * cash flow of its fills, from the orders it placed in order-management. An order in a terminal
 * state (filled, cancelled, rejected, expired) no longer changes, so once order-management reports
 * one, what it contributed is kept on its decision (0380_ai_orchestrator_lifecycle.sql) and summed
 * there: an evaluation asks order-management only about the orders still open (it asked about
 * every order the strategy ever placed, one call each, at every evaluation).
 */
import { peerIdentityHeaders, publicServiceName, unavailable, type PeerClient, type PostgresClient } from "../../kit";
import type { OrderSnapshot as TradingOrderSnapshot } from "../../trading/events";
import { isTerminal } from "../../trading/orderState";
import type { Strategy } from "./store";

/** The fields of order-management's order (trading/events.ts) the book reads. */
export type OrderSnapshot = Pick<
  TradingOrderSnapshot,
  "orderId" | "symbol" | "side" | "quantity" | "status" | "filledQuantity" | "avgFillPrice" | "fees" | "rejectReason" | "rejectMessage"
>;

/** What one order contributes to the book: its signed filled quantity and its cash flow. */
function contribution(o: OrderSnapshot): { filledSigned: number; cashFlow: number } {
  const q = Number(o.filledQuantity);
  if (!q) return { filledSigned: 0, cashFlow: 0 };
  const sign = o.side === "buy" ? 1 : -1;
  return { filledSigned: sign * q, cashFlow: -sign * q * Number(o.avgFillPrice ?? 0) - Number(o.fees) };
}

export class StrategyOrders {
  constructor(private readonly pg: PostgresClient) {}

  /** The strategy's orders not yet known to be final. */
  async open(strategyId: string): Promise<string[]> {
    const { rows } = await this.pg.query<{ order_id: string }>(
      `SELECT order_id FROM ai_decisions WHERE strategy_id = $1 AND order_id IS NOT NULL AND order_final_status IS NULL`,
      [strategyId],
    );
    return rows.map((r) => r.order_id);
  }

  /** The strategy's buy and sell decisions without a recorded order outcome (recover.ts), with their age. */
  async unrecorded(strategyId: string): Promise<Array<{ decisionId: string; ageMs: number }>> {
    const { rows } = await this.pg.query<{ decision_id: string; age_ms: number }>(
      `SELECT decision_id, (extract(epoch FROM now() - decided_at) * 1000)::float8 AS age_ms FROM ai_decisions
       WHERE strategy_id = $1 AND action IN ('buy', 'sell') AND order_id IS NULL AND risk IS NULL ORDER BY decided_at`,
      [strategyId],
    );
    return rows.map((r) => ({ decisionId: r.decision_id, ageMs: r.age_ms }));
  }

  /**
   * Records the outcome recover.ts found for a decision, unless one was recorded meanwhile. An
   * error found with it is kept (e.g. the regimes were unavailable) before the new one.
   */
  async recordRecovered(decisionId: string, o: { orderId: string | null; risk: Record<string, unknown>; error: string | null }): Promise<void> {
    await this.pg.query(
      `UPDATE ai_decisions SET order_id = $2, risk = $3, error = coalesce(error || '; ' || $4::text, error, $4::text)
       WHERE decision_id = $1 AND order_id IS NULL AND risk IS NULL`,
      [decisionId, o.orderId, JSON.stringify(o.risk), o.error],
    );
  }

  /** Keeps the final state of orders order-management reported terminal. */
  async settle(strategyId: string, finals: OrderSnapshot[]): Promise<void> {
    if (finals.length === 0) return;
    const c = finals.map(contribution);
    await this.pg.query(
      `UPDATE ai_decisions d SET order_final_status = f.status, order_filled_signed = f.filled, order_cash_flow = f.cash
       FROM unnest($2::uuid[], $3::text[], $4::numeric[], $5::numeric[]) AS f(order_id, status, filled, cash)
       WHERE d.strategy_id = $1 AND d.order_id = f.order_id`,
      [strategyId, finals.map((o) => o.orderId), finals.map((o) => o.status), c.map((x) => x.filledSigned), c.map((x) => x.cashFlow)],
    );
  }

  /** The settled orders' position per symbol and their cash flow. */
  async settled(strategyId: string): Promise<{ position: Map<string, number>; cash: number }> {
    const { rows } = await this.pg.query<{ symbol: string; position: number; cash: number }>(
      `SELECT symbol, sum(order_filled_signed)::float8 AS position, sum(order_cash_flow)::float8 AS cash
       FROM ai_decisions WHERE strategy_id = $1 AND order_final_status IS NOT NULL GROUP BY symbol`,
      [strategyId],
    );
    return { position: new Map(rows.filter((r) => r.position !== 0).map((r) => [r.symbol, r.position])), cash: rows.reduce((a, r) => a + r.cash, 0) };
  }
}

/** The strategy owner's identity on the orchestrator's calls for it: a peer acting on its own (`service`), not their session. */
export const ownerHeaders = (s: Strategy) => peerIdentityHeaders(s.userId, "trader");

/** The book: the settled orders from the orchestrator's table, the open ones from order-management. */
export async function book(deps: { orders: StrategyOrders; peers: PeerClient }, s: Strategy) {
  const pending = new Map<string, { buy: number; sell: number }>();
  const looked: OrderSnapshot[] = [];
  for (const orderId of await deps.orders.open(s.strategyId)) {
    // A read: cut by the shutdown (kit peers cutOnClose), it ends the evaluation before anything is decided (evaluate.ts).
    const r = await deps.peers.call<OrderSnapshot>("order-management", `/${orderId}`, { headers: ownerHeaders(s), cutOnClose: true });
    // A strategy's own order not answered is not "no fills": the position and the loss stop would
    // be computed without it (and buy past maxPosition). The evaluation fails; the next tick retries.
    if (r.status !== 200) {
      throw unavailable("UPSTREAM_UNAVAILABLE", `the strategy's orders cannot be read now (${publicServiceName("order-management")} answered ${r.status}); retry`, 1);
    }
    looked.push(r.body);
  }
  await deps.orders.settle(s.strategyId, looked.filter((o) => isTerminal(o.status)));
  const { position, cash: settledCash } = await deps.orders.settled(s.strategyId);
  let cash = settledCash;
  for (const o of looked) {
    if (isTerminal(o.status)) continue;
    const p = pending.get(o.symbol) ?? { buy: 0, sell: 0 };
    p[o.side] += Math.max(0, Number(o.quantity) - Number(o.filledQuantity));
    pending.set(o.symbol, p);
    const c = contribution(o);
    if (c.filledSigned) position.set(o.symbol, (position.get(o.symbol) ?? 0) + c.filledSigned);
    cash += c.cashFlow;
  }
  return { position, pending, cash };
}
