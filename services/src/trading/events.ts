/** Kafka topics and event payloads of the trading core (topics are declared in migrations/kafka.ts). */
import type { Bar, Fill, OrderRequest } from "./types";
import type { CandleBatch } from "./marketdata/candleMessages";
import type { OrderStatus } from "./orderState";

export const TOPICS = {
  candles: "market.candles",
  orders: "trading.orders",
  executions: "trading.executions",
  complianceAlerts: "compliance.alerts",
} as const;

export interface OrderSnapshot extends OrderRequest {
  status: OrderStatus;
  filledQuantity: string;
  avgFillPrice: string | null;
  fees: string;
  rejectReason: string | null;
  rejectMessage: string | null;
  lastPrice: string | null;
  createdAt: string;
  updatedAt: string;
}

/** trading.orders, key = orderId. One event per state change, eventId = `${orderId}:${status}[:n]`. */
export interface OrderEventMsg {
  eventId: string;
  type: `order.${OrderStatus}`;
  order: OrderSnapshot;
  ts: number;
}

/**
 * trading.executions, key = userId (its canonical spelling, kit userPartitionKey): a user's fills (of every order) and outcomes are on one
 * partition, in the order the engine committed them, so consumers that fold them per user
 * (portfolio-manager: average price, realized PnL, the daily PnL the risk check reads) see them in
 * that order; an order's own events keep their order with it. (Events published before this key
 * was the user id carry the order id; consumers read the payload, never the key.)
 * `order.cancelled` is the engine's confirmation of a cancel request: the order is off the book,
 * `remaining` was never executed.
 */
export type ExecutionMsg =
  | { eventId: string; type: "fill"; fill: Fill }
  | { eventId: string; type: "order.expired" | "order.rejected"; orderId: string; userId: string; symbol: string; reason: string; ts: number }
  | { eventId: string; type: "order.cancelled"; orderId: string; userId: string; symbol: string; remaining: string; reason: string; ts: number };

/** market.candles, key = symbol: one bar (v1) or a batch of one symbol's bars (v2, marketdata/candleMessages.ts). */
export type CandleMsg = Bar | CandleBatch;

/** Redis keys of market data kept by data-bridge. */
export const lastPriceKey = (symbol: string) => `market:last:${symbol}`;
export const lastBarKey = (symbol: string) => `market:bar:${symbol}`;
