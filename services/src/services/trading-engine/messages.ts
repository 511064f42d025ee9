/**
 * trading-engine's messages, without I/O: what an incoming `trading.orders` / `market.candles`
 * message (one bar or a batch of bars) asks of the engine (checked: a message the engine could never apply is a
 * PoisonMessageError, set aside by the consumer), and the `trading.executions` events it answers with.
 */
import { ANY_CASE_UUID_RE, isJsonObject, isUnstorableText, userPartitionKey } from "../../kit";
import { D } from "../../trading/decimal";
import { TOPICS, type ExecutionMsg, type OrderEventMsg } from "../../trading/events";
import { PoisonMessageError } from "../../trading/infra/deadLetters";
import { candleBatchOf } from "../../trading/infra/topicSchemas";
import { barsOf } from "../../trading/marketdata/candleMessages";
import type { OutboxEvent } from "../../trading/infra/outbox";
import { SYMBOL_RE, type Bar, type Fill, type OrderRequest } from "../../trading/types";

export type EngineCommand = { kind: "execute"; order: OrderRequest } | { kind: "cancel"; order: OrderRequest } | { kind: "bars"; bars: Bar[] } | { kind: "ignore" };

const DECIMAL_RE = /^\d{1,20}(\.\d{1,18})?$/;

function decimal(v: unknown, field: string, { positive }: { positive: boolean }): string {
  if (typeof v !== "string" || !DECIMAL_RE.test(v)) throw new PoisonMessageError(`${field} is not a decimal string`);
  if (positive ? D(v).lte(0) : D(v).lt(0)) throw new PoisonMessageError(`${field} must be ${positive ? "positive" : "non-negative"}`);
  return v;
}

/** The order of a trading.orders snapshot, checked field by field. */
export function orderOf(o: unknown): OrderRequest {
  if (!isJsonObject(o)) throw new PoisonMessageError("order is missing");
  if (typeof o.orderId !== "string" || !ANY_CASE_UUID_RE.test(o.orderId)) throw new PoisonMessageError("orderId is not a uuid");
  if (typeof o.userId !== "string" || o.userId.length === 0 || o.userId.length > 200) throw new PoisonMessageError("userId is missing");
  // te_orders keeps the order as jsonb, which refuses these: refused here, before a live order is sent to Binance.
  if (isUnstorableText(o.userId)) throw new PoisonMessageError("userId holds U+0000 or an unpaired surrogate");
  if (typeof o.clientOrderId === "string" && isUnstorableText(o.clientOrderId)) throw new PoisonMessageError("clientOrderId holds U+0000 or an unpaired surrogate");
  if (typeof o.symbol !== "string" || !SYMBOL_RE.test(o.symbol)) throw new PoisonMessageError("symbol is invalid");
  if (o.side !== "buy" && o.side !== "sell") throw new PoisonMessageError("side is invalid");
  if (o.type !== "market" && o.type !== "limit") throw new PoisonMessageError("type is invalid");
  if (o.timeInForce !== undefined && o.timeInForce !== "GTC" && o.timeInForce !== "IOC") throw new PoisonMessageError("timeInForce is invalid");
  const limitPrice = o.type === "limit" ? decimal(o.limitPrice, "limitPrice", { positive: true }) : undefined;
  const clientOrderId = typeof o.clientOrderId === "string" ? o.clientOrderId : undefined;
  return {
    // PostgreSQL answers uuids in lower case: the engine's "already executed" check and its te_orders
    // and te_live_sends keys compare against that spelling, so an upper-case id in a hand-made or
    // replayed message must not read as a new order (in live mode: sent to Binance again).
    orderId: o.orderId.toLowerCase(), clientOrderId, userId: o.userId, symbol: o.symbol, side: o.side, type: o.type,
    quantity: decimal(o.quantity, "quantity", { positive: true }), limitPrice, timeInForce: o.timeInForce,
  };
}

/**
 * What a message asks of the engine; throws PoisonMessageError when it is malformed. `json` is the
 * message as the topic schema checked it (trading/infra/topicSchemas.ts): a `market.candles` message
 * is a batch of bars that passed the bar rules (marketdata/barRules.ts: strict decimals, low <= open,
 * close <= high), its bad bars already split off and set aside.
 */
export function commandOf(topic: string, json: object): EngineCommand {
  if (topic === TOPICS.candles) return { kind: "bars", bars: barsOf(candleBatchOf(json)) };
  if (topic !== TOPICS.orders) return { kind: "ignore" };
  const v = json as Record<string, unknown>;
  if (typeof v.type !== "string") throw new PoisonMessageError("order event has no type");
  const type = v.type as OrderEventMsg["type"];
  if (type === "order.accepted") return { kind: "execute", order: orderOf(v.order) };
  if (type === "order.pending_cancel") return { kind: "cancel", order: orderOf(v.order) };
  return { kind: "ignore" };
}

/**
 * `trading.executions` is keyed by user id (events.ts): every event of a user, whatever the order,
 * lands on one partition in the order the engine committed it, so portfolio-manager applies a user's
 * fills in that order (average price and realized PnL depend on it) and an order's own events (a
 * fill, then its cancel confirmation) keep their order too.
 */
export function fillEvent(f: Fill): OutboxEvent {
  const msg: ExecutionMsg = { eventId: f.fillId, type: "fill", fill: f };
  return { eventId: f.fillId, topic: TOPICS.executions, key: userPartitionKey(f.userId), payload: msg };
}

export function outcomeEvent(o: OrderRequest, type: "order.expired" | "order.rejected", reason: string): OutboxEvent {
  const eventId = `${o.orderId}:exec:${type}`;
  const msg: ExecutionMsg = { eventId, type, orderId: o.orderId, userId: o.userId, symbol: o.symbol, reason, ts: Date.now() };
  return { eventId, topic: TOPICS.executions, key: userPartitionKey(o.userId), payload: msg };
}

/** The engine's confirmation of a cancel request: `remaining` left the book unexecuted. */
export function cancelledEvent(o: OrderRequest, remaining: string, reason: string): OutboxEvent {
  const eventId = `${o.orderId}:exec:order.cancelled`;
  const msg: ExecutionMsg = { eventId, type: "order.cancelled", orderId: o.orderId, userId: o.userId, symbol: o.symbol, remaining, reason, ts: Date.now() };
  return { eventId, topic: TOPICS.executions, key: userPartitionKey(o.userId), payload: msg };
}
