/**
 * The topic schemas every consumer applies before its handler (services/src/trading/infra/topicSchemas.ts):
 * what the producers really send passes, and every poison message of the hostile suite is refused
 * with a reason naming the field. (The hostile suite checks the consumers do set them aside.)
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BUSINESS_TOPICS } from "../../services/src/business/events";
import type { OrderRow } from "../../services/src/services/order-management/data";
import { orderEvent } from "../../services/src/services/order-management/domain";
import { cancelledEvent, fillEvent, outcomeEvent } from "../../services/src/services/trading-engine/messages";
import { TOPICS } from "../../services/src/trading/events";
import { messageProblem } from "../../services/src/trading/infra/topicSchemas";
import { SyntheticSeries } from "../../services/src/trading/marketdata/synthetic";
import type { OrderRequest } from "../../services/src/trading/types";
import { CONSUMERS, poisonFor, validMessage } from "../hostile/poison";

const row = (o: Partial<OrderRow> = {}): OrderRow => ({
  order_id: randomUUID(), user_id: randomUUID(), client_order_id: "ai:strategy-1:abc", idempotency_key: null, request_hash: "h", symbol: "BTCUSDT", side: "buy",
  type: "limit", time_in_force: "GTC", quantity: "0.12345678", limit_price: "42000.5", status: "accepted", filled_quantity: "0", avg_fill_price: null, fees: "0",
  reject_reason: null, reject_message: null, last_price: "42001", created_at: new Date(), updated_at: new Date(), ...o,
});
const order: OrderRequest = { orderId: randomUUID(), userId: randomUUID(), symbol: "ETHUSDT", side: "sell", type: "market", quantity: "3" };

const series = new SyntheticSeries("BTCUSDT", "1m", { seed: "topic-schemas" });
const bars = Array.from({ length: 200 }, () => series.next());

describe("topic schemas", () => {
  it("accept what the producers send", () => {
    const sent: Array<[string, unknown]> = [
      ...(["new", "accepted", "rejected", "partially_filled", "pending_cancel", "filled", "cancelled", "expired"] as const).map((status): [string, unknown] => [TOPICS.orders, orderEvent(row({ status, type: status === "rejected" ? "market" : "limit", limit_price: status === "rejected" ? null : "1.5", avg_fill_price: "41999.123456789012345678" }), ":f1").payload]),
      [TOPICS.executions, fillEvent({ fillId: `${order.orderId}:1`, orderId: order.orderId, userId: order.userId, symbol: "ETHUSDT", side: "sell", quantity: "3", price: "3100.25", fee: "0.0000000000000123456789", liquidity: "taker", ts: Date.now() }).payload],
      [TOPICS.executions, outcomeEvent(order, "order.expired", "IOC").payload],
      [TOPICS.executions, cancelledEvent(order, "3", "cancelled by the user").payload],
      [BUSINESS_TOPICS.payments, { eventId: "e", type: "payment.refunded", intentId: "pi_1", userId: randomUUID(), amount: 1999, currency: "eur", reference: `invoice:${randomUUID()}`, refundedAmount: 500, ts: Date.now() }],
      [BUSINESS_TOPICS.billing, { eventId: "e", type: "invoice.payment_failed", userId: randomUUID(), subscriptionId: randomUUID(), planId: "pro", status: "past_due", currency: "usd", mrr: 2900, invoiceId: randomUUID(), amountDue: 2900, attempts: 2, nextAttemptAt: new Date().toISOString(), ts: Date.now() }],
      [BUSINESS_TOPICS.usage, { eventId: randomUUID(), ts: Date.now(), userId: null, apiKeyId: null, route: "unknown", method: "OPTIONS", status: 404, latencyMs: 0.123 }],
      ...Object.keys(CONSUMERS).map((t): [string, unknown] => [t, validMessage(t, "XYZUSDT")]),
      // What data-bridge publishes: synthetic bars, a flat bar, a zero volume, 12 decimals.
      ...bars.map((b): [string, unknown] => [TOPICS.candles, b]),
      [TOPICS.candles, { symbol: "BTCUSDT", interval: "1m", openTime: 0, closeTime: 59_999, open: "1", high: "1", low: "1", close: "1", volume: "0" }],
      [TOPICS.candles, { symbol: "BTCUSDT", interval: "1w", openTime: 1_700_000_000_000, closeTime: 1_700_604_799_999, open: "0.000000000001", high: "999999999999999.5", low: "0.000000000001", close: "2", volume: "12.5" }],
    ];
    for (const [topic, msg] of sent) expect(messageProblem(topic, JSON.stringify(msg)), `${topic} ${JSON.stringify(msg).slice(0, 120)}`).toBeUndefined();
  });

  it("refuse a payments.events or billing.events message whose currency is missing or none the platform books, naming currency", () => {
    const refund = { eventId: "refund:r1", type: "payment.refunded", intentId: randomUUID(), userId: randomUUID(), amount: 1000, currency: "usd", reference: null, refundedAmount: 700, refundId: randomUUID(), ts: Date.now() };
    const billing = { eventId: "e", type: "invoice.paid", userId: randomUUID(), subscriptionId: randomUUID(), planId: "pro", status: "active", currency: "usd", mrr: 2900, ts: Date.now() };
    for (const [topic, msg] of [[BUSINESS_TOPICS.payments, refund], [BUSINESS_TOPICS.billing, billing]] as const) {
      expect(messageProblem(topic, JSON.stringify(msg))).toBeUndefined();
      const { currency: _, ...without } = msg;
      expect(messageProblem(topic, JSON.stringify(without))).toMatch(/message: currency: /);
      for (const currency of ["USD", "xyz", "us", "usdx", " usd", "", 840, null])
        expect(messageProblem(topic, JSON.stringify({ ...msg, currency })), String(currency)).toMatch(new RegExp(`^${topic.replace(".", "\\.")} message: currency: `));
    }
  });

  it("refuse a refund event without its amounts, of nothing, or past its payment's amount in the payment's currency, naming the field (session 56)", () => {
    const refund = { eventId: "refund:r1:adjusted", type: "payment.refund_adjusted", intentId: randomUUID(), userId: randomUUID(), amount: 1000, currency: "usd", paymentCurrency: "usd", reference: null, refundedAmount: 700, previousRefundedAmount: 1000, refundId: randomUUID(), ts: Date.now() };
    const problem = (o: Record<string, unknown>) => messageProblem(BUSINESS_TOPICS.payments, JSON.stringify({ ...refund, ...o }));
    // What payment-service writes: a refund at most the payment, an adjustment up or down, one settled in another currency (any amount there).
    for (const o of [{}, { refundedAmount: 1000, previousRefundedAmount: 700 }, { refundedAmount: 1, previousRefundedAmount: 1 }, { currency: "eur", refundedAmount: 5000, previousRefundedAmount: 4000 }, { type: "payment.refunded", previousRefundedAmount: undefined }, { paymentCurrency: undefined }])
      expect(problem(o), JSON.stringify(o)).toBeUndefined();
    for (const type of ["payment.refunded", "payment.refund_failed", "payment.refund_reversed", "payment.refund_adjusted"]) {
      expect(problem({ type, refundedAmount: undefined }), type).toMatch(/message: refundedAmount: required/);
      expect(problem({ type, refundedAmount: 0 }), type).toMatch(/message: refundedAmount: a refund moves at least 1/);
      expect(problem({ type, refundedAmount: 1001 }), type).toMatch(/message: refundedAmount: more than the payment's amount/);
      expect(problem({ type, refundedAmount: 1001, paymentCurrency: undefined }), type).toMatch(/refundedAmount: more than/);
    }
    expect(problem({ previousRefundedAmount: undefined })).toMatch(/message: previousRefundedAmount: required/);
    expect(problem({ previousRefundedAmount: 0 })).toMatch(/message: previousRefundedAmount: a refund moves at least 1/);
    expect(problem({ previousRefundedAmount: 1001 })).toMatch(/message: previousRefundedAmount: more than/);
    // A payment's own events carry no refund amount to check.
    expect(problem({ type: "payment.succeeded", refundedAmount: undefined, previousRefundedAmount: undefined })).toBeUndefined();
  });

  it("refuse every poison message of the hostile suite, naming the field", () => {
    let checked = 0;
    for (const topic of Object.keys(CONSUMERS)) {
      for (const m of poisonFor(topic, "XYZUSDT")) {
        const problem = messageProblem(topic, m.value);
        expect(problem, `${topic}: ${m.name}`).toBeDefined();
        const field = m.name.split(" ")[0];
        if (/^[a-z]+(\.[a-zA-Z]+)?$/i.test(field) && m.name.includes(" ") && !/^(not|invalid|JSON|empty|nested)$/.test(field)) expect(problem, `${topic}: ${m.name}`).toContain(`${field}`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(300);
  });
});
