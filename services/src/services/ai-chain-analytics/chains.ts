/**
 * The decision chain of the AI tier, pure (no I/O): signal -> decision -> order -> fills. Maps the
 * orchestrator's decision records and the trading core's order and execution events onto the
 * ClickHouse rows (migrations clickhouse/0005, 0022, 0023) and the ArangoDB graph documents (graph.ts). An
 * order belongs to a decision when its clientOrderId is the decision id (ai-orchestrator sets it)
 * and its user is the decision's user: any user can put any text in their own order's
 * clientOrderId, so the id alone would let one user's order into another's chain. The rows and
 * edges carry the user (canonical spelling) for the reads to join on; a fill belongs to its order.
 */
import { ANY_CASE_UUID_RE, userPartitionKey } from "../../kit";
import type { OrderEventMsg } from "../../trading/events";
import type { Fill } from "../../trading/types";

/** What ai-orchestrator's GET /internal/decisions returns for each decision. */
export interface DecisionIn {
  decisionId: string;
  strategyId: string;
  userId: string;
  symbol: string;
  decidedAt: string;
  modelVersion: string | null;
  probabilityUp: number | null;
  decisionPrice: number | null;
  action: "buy" | "sell" | "hold" | "skip";
  quantity: number;
  orderId: string | null;
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function decisionRow(d: DecisionIn) {
  const ms = Date.parse(d.decidedAt);
  return {
    decision_id: d.decisionId,
    decided_ms: ms,
    day: day(ms),
    user_id: userPartitionKey(d.userId),
    strategy_id: d.strategyId,
    model_version: d.modelVersion ?? "",
    symbol: d.symbol,
    action: d.action,
    probability_up: d.probabilityUp ?? 0,
    decision_price: d.decisionPrice ?? 0,
    quantity: d.quantity,
  };
}

/**
 * The order ai-orchestrator placed for a decision, with the decision's user, or undefined while it
 * has none. The readers link by it the orders a replica of the release before 0022 wrote without
 * their user (migration 0023 says why).
 */
export function decisionOrderRow(d: DecisionIn) {
  if (!d.orderId) return undefined;
  const ms = Date.parse(d.decidedAt);
  return { decision_id: d.decisionId, order_id: d.orderId, user_id: userPartitionKey(d.userId), day: day(ms) };
}

/** An order event's row, or undefined when the order did not come from a decision. */
export function orderRow(e: OrderEventMsg) {
  const o = e.order;
  if (!o.clientOrderId || !ANY_CASE_UUID_RE.test(o.clientOrderId)) return undefined;
  const created = Date.parse(o.createdAt);
  return {
    order_id: o.orderId,
    user_id: userPartitionKey(o.userId),
    decision_id: o.clientOrderId.toLowerCase(),
    day: day(created),
    status: o.status,
    side: o.side,
    created_ms: created,
    event_ms: Date.parse(o.updatedAt),
    event_id: e.eventId,
  };
}

export function fillRow(f: Fill) {
  return {
    fill_id: f.fillId,
    order_id: f.orderId,
    day: day(f.ts),
    symbol: f.symbol,
    side: f.side,
    quantity: Number(f.quantity),
    price: Number(f.price),
    fee: Number(f.fee),
    market_ms: f.ts,
  };
}

/** ArangoDB keys: `_key` allows [A-Za-z0-9_\-:.@()+,=;$!*'%]; order and fill ids already fit. */
export const graphKey = (id: string) => id.replace(/[^A-Za-z0-9_\-:.@()+,=;$!*'%]/g, "_");

export interface GraphDoc {
  collection: "ai_signals" | "ai_decisions" | "ai_orders" | "ai_fills";
  key: string;
  doc: Record<string, unknown>;
}
export interface GraphEdge {
  from: string;
  to: string;
  step: "decided" | "ordered" | "filled";
  /** Whose step it is: the chain traversal follows only the decision's user's edges. */
  userId: string;
}

/** A decision as graph vertices: its signal (the prediction) and itself, linked. */
export function decisionGraph(d: DecisionIn): { vertices: GraphDoc[]; edges: GraphEdge[] } {
  const k = graphKey(d.decisionId);
  const vertices: GraphDoc[] = [
    { collection: "ai_decisions", key: k, doc: { strategyId: d.strategyId, userId: d.userId, symbol: d.symbol, action: d.action, quantity: d.quantity, decidedAt: d.decidedAt, decisionPrice: d.decisionPrice } },
  ];
  const edges: GraphEdge[] = [];
  if (d.modelVersion) {
    vertices.push({ collection: "ai_signals", key: k, doc: { modelVersion: d.modelVersion, symbol: d.symbol, probabilityUp: d.probabilityUp } });
    edges.push({ from: `ai_signals/${k}`, to: `ai_decisions/${k}`, step: "decided", userId: userPartitionKey(d.userId) });
  }
  return { vertices, edges };
}

export function orderGraph(e: OrderEventMsg): { vertices: GraphDoc[]; edges: GraphEdge[] } | undefined {
  const row = orderRow(e);
  if (!row) return undefined;
  const k = graphKey(row.order_id);
  return {
    vertices: [{ collection: "ai_orders", key: k, doc: { status: row.status, side: row.side, createdAt: e.order.createdAt, updatedAt: e.order.updatedAt } }],
    edges: [{ from: `ai_decisions/${graphKey(row.decision_id)}`, to: `ai_orders/${k}`, step: "ordered", userId: row.user_id }],
  };
}

export function fillGraph(f: Fill): { vertices: GraphDoc[]; edges: GraphEdge[] } {
  const k = graphKey(f.fillId);
  return {
    vertices: [{ collection: "ai_fills", key: k, doc: { quantity: f.quantity, price: f.price, fee: f.fee, ts: f.ts } }],
    edges: [{ from: `ai_orders/${graphKey(f.orderId)}`, to: `ai_fills/${k}`, step: "filled", userId: userPartitionKey(f.userId) }],
  };
}
