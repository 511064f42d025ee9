/**
 * Submitting an order: the pre-trade check and the insert in one transaction, serialized per user
 * across every replica (`lockUserOrders`, then the exposure read under it), so two concurrent orders
 * of a user can never both pass a limit that together they breach. The order is stored with the
 * decided status (accepted, or rejected with the named reason) and both state changes (`new`, then
 * the decision) are enqueued in the outbox in the same transaction.
 */
import type { Redis } from "ioredis";
import type { PostgresClient } from "../../kit";
import { enqueue } from "../../trading/infra/outbox";
import { lockUserOrders, marketFacts, riskFacts } from "../../trading/infra/riskContext";
import { applyEvent } from "../../trading/orderState";
import { checkOrder, type RiskLimits } from "../../trading/risk";
import * as data from "./data";
import { orderEvent, type OrderRequest } from "./domain";

export interface Submission {
  orderId: string;
  userId: string;
  body: OrderRequest;
  idempotencyKey: string | null;
  requestHash: string;
}

/**
 * One at a time per key inside this process. Without it a burst of one user's orders would take a
 * pool connection each just to wait on the advisory lock, starving every other user of connections;
 * with it a user holds at most one connection per replica. (A promise chain per key: p-limit and
 * friends limit globally, not per key.)
 */
export class PerKeyQueue {
  private readonly tails = new Map<string, Promise<unknown>>();
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

export async function submitOrder(pg: PostgresClient, redis: Redis | undefined, limits: RiskLimits, s: Submission): Promise<data.OrderRow> {
  const b = s.body;
  // Market facts (last price, kill switch) come from Dragonfly before the lock: the lock only needs
  // to cover what this service writes.
  const market = await marketFacts(redis, s.userId, b.symbol);
  return pg.transaction(async (tx) => {
    await lockUserOrders(tx, s.userId);
    const facts = await riskFacts(tx, s.userId, b.symbol, limits.rateWindowMs);
    const decision = checkOrder(b, { ...facts, ...market, now: Date.now() }, limits);
    const status = applyEvent("new", decision.ok ? "accept" : "risk_reject");
    const created = await data.insertOrder(tx, {
      orderId: s.orderId, userId: s.userId, clientOrderId: b.clientOrderId ?? s.orderId, idempotencyKey: s.idempotencyKey, requestHash: s.requestHash,
      symbol: b.symbol, side: b.side, type: b.type, timeInForce: b.timeInForce ?? "GTC", quantity: b.quantity, limitPrice: b.limitPrice ?? null,
      status, rejectReason: decision.ok ? null : decision.reason, rejectMessage: decision.ok ? null : decision.message, lastPrice: market.lastPrice ?? null,
    });
    await enqueue(tx, "om_outbox", [orderEvent({ ...created, status: "new", reject_reason: null, reject_message: null }), orderEvent(created)]);
    return created;
  });
}
