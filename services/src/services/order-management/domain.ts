/**
 * order-management's rules, without I/O: an order's public snapshot and events, the request hash
 * behind idempotency, the checks beyond the schema, and what a fill does to an order.
 */
import { createHash } from "node:crypto";
import { accountDeleted as refusedAsDeleted, HttpError } from "../../kit";
import { D, str } from "../../trading/decimal";
import { TOPICS, type OrderEventMsg, type OrderSnapshot } from "../../trading/events";
import type { OutboxEvent } from "../../trading/infra/outbox";
import { contextOf, type MarketFacts, type RiskFacts } from "../../trading/infra/riskContext";
import { applyEvent, nextStatus, type OrderEvent, type OrderStatus } from "../../trading/orderState";
import type { OrderBodyFields } from "../../trading/orderRequest";
import { checkOrder, type RiskDecision, type RiskLimits } from "../../trading/risk";
import type { OrderRow } from "./data";

/** An order as a client sends it (trading/orderRequest.ts: the schema and the checks beyond it). */
export type OrderRequest = OrderBodyFields;

export function snapshot(r: OrderRow): OrderSnapshot {
  return {
    orderId: r.order_id,
    clientOrderId: r.client_order_id,
    userId: r.user_id,
    symbol: r.symbol,
    side: r.side,
    type: r.type,
    quantity: str(r.quantity),
    limitPrice: r.limit_price === null ? undefined : str(r.limit_price),
    timeInForce: r.time_in_force,
    status: r.status,
    filledQuantity: str(r.filled_quantity),
    avgFillPrice: r.avg_fill_price === null ? null : str(D(r.avg_fill_price).toDecimalPlaces(8)),
    fees: str(r.fees),
    rejectReason: r.reject_reason,
    rejectMessage: r.reject_message,
    lastPrice: r.last_price === null ? null : str(r.last_price),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

/** The `trading.orders` event of the order's current state (one per state; `suffix` for partial fills). */
export function orderEvent(row: OrderRow, suffix = ""): OutboxEvent {
  const eventId = `${row.order_id}:${row.status}${suffix}`;
  const msg: OrderEventMsg = { eventId, type: `order.${row.status}`, order: snapshot(row), ts: Date.now() };
  return { eventId, topic: TOPICS.orders, key: row.order_id, payload: msg };
}

/** Hash of the request in canonical form: the same key with another body is a conflict. */
export function requestHash(b: OrderRequest): string {
  const canonical = { symbol: b.symbol, side: b.side, type: b.type, quantity: str(b.quantity), limitPrice: b.limitPrice ? str(b.limitPrice) : null, timeInForce: b.timeInForce ?? "GTC", clientOrderId: b.clientOrderId ?? null };
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
}

/** A submission of an account deleted before it was decided (user-management's tombstone, deleted_users). */
export const accountDeleted = (userId: string) => refusedAsDeleted(userId, "it places no orders");
/** The key came back with another body: names the header, as the kit's idempotencyKeyReused does for the other services. */
export const idempotencyKeyReused = () => new HttpError(409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request body; use a new key for a new request", "idempotency-key");

/**
 * The order's totals after a fill, the state machine event it is (`fill` when nothing remains) and
 * the status it leads to; `allowed` false when the current state does not take that event
 * (quantities are still recorded, the status is kept).
 */
export function fillTotals(cur: OrderRow, fill: { quantity: string; price: string; fee: string }) {
  const filled = D(cur.filled_quantity).plus(fill.quantity);
  const avg = D(cur.avg_fill_price ?? 0).mul(cur.filled_quantity).plus(D(fill.quantity).mul(fill.price)).div(filled);
  const event: OrderEvent = filled.gte(cur.quantity) ? "fill" : "partial_fill";
  const next = nextStatus(cur.status, event);
  const status: OrderStatus = next ?? cur.status;
  return { filled: str(filled), avgPrice: avg.toFixed(), fees: str(D(cur.fees).plus(fill.fee)), event, status, allowed: next !== undefined };
}

/** A submission as order-management decides it: the request and the caller's identity. */
export interface Submission {
  orderId: string;
  userId: string;
  body: OrderRequest;
  idempotencyKey: string | null;
  requestHash: string;
}

/**
 * What a batch decision says of one submission: a new order with its status and risk decision, a
 * replay of an order stored before (`prior`) or decided earlier in the same batch (`sameAs`: its
 * index), or a conflict (the key came with another body).
 */
export type SubmissionDecision =
  | { kind: "new"; status: OrderStatus; risk: RiskDecision }
  | { kind: "replay"; prior: OrderRow }
  | { kind: "replay"; sameAs: number }
  | { kind: "conflict" }
  | { kind: "account_deleted" };

/** Key of a (user, symbol or Idempotency-Key) pair in maps. */
export const pairKey = (userId: string, other: string) => `${userId}\u0000${other}`;

/**
 * Decides a batch of submissions in order, as if each had been checked alone under its user's lock:
 * each order sees the exposure, the rate-window entries and the open orders of the orders before it
 * in the batch (an accepted order adds its quantity to its side's open exposure and one to its
 * user's open orders, in every symbol; every stored order, accepted or rejected, counts in the rate
 * window, as the database read counts them). `facts` is keyed by
 * (user, symbol) (see riskFactsMany); `priors` are the stored orders of the batch's Idempotency-Keys;
 * `deleted` the users whose account was deleted (their submissions are refused, nothing stored).
 */
export function decideSubmissions(
  subs: Submission[],
  ctx: { facts: (userId: string, symbol: string) => RiskFacts; market: MarketFacts[]; priors: OrderRow[]; deleted?: Set<string>; limits: RiskLimits; now: number },
): SubmissionDecision[] {
  const prior = new Map(ctx.priors.map((r) => [pairKey(r.user_id, r.idempotency_key ?? ""), r]));
  const firstWithKey = new Map<string, number>();
  const exposure = new Map<string, RiskFacts>();
  const recentTimes = new Map<string, number[]>();
  const openOrders = new Map<string, number>();
  return subs.map((s, i): SubmissionDecision => {
    // Before the Idempotency-Key: a deleted account's retry is refused too, not answered with its order.
    if (ctx.deleted?.has(s.userId)) return { kind: "account_deleted" };
    if (s.idempotencyKey) {
      const k = pairKey(s.userId, s.idempotencyKey);
      const stored = prior.get(k);
      if (stored) return stored.request_hash === s.requestHash ? { kind: "replay", prior: stored } : { kind: "conflict" };
      const first = firstWithKey.get(k);
      if (first !== undefined) return subs[first].requestHash === s.requestHash ? { kind: "replay", sameAs: first } : { kind: "conflict" };
      firstWithKey.set(k, i);
    }
    const pk = pairKey(s.userId, s.body.symbol);
    const f = exposure.get(pk) ?? { ...ctx.facts(s.userId, s.body.symbol) };
    exposure.set(pk, f);
    const times = recentTimes.get(s.userId) ?? [...f.recentOrderTimes];
    recentTimes.set(s.userId, times);
    // The user's open orders, every symbol: read once per user (each pair's facts count the same orders).
    const open = openOrders.get(s.userId) ?? f.openOrders;
    const risk = checkOrder(s.body, contextOf({ ...f, recentOrderTimes: times, openOrders: open }, ctx.market[i], ctx.now), ctx.limits);
    times.push(ctx.now);
    openOrders.set(s.userId, risk.ok ? open + 1 : open);
    if (risk.ok && s.body.side === "buy") f.openBuy = str(D(f.openBuy).plus(s.body.quantity));
    if (risk.ok && s.body.side === "sell") f.openSell = str(D(f.openSell).plus(s.body.quantity));
    return { kind: "new", status: applyEvent("new", risk.ok ? "accept" : "risk_reject"), risk };
  });
}
