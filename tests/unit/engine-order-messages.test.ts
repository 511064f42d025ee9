/**
 * trading-engine's reading of a trading.orders message (services/src/services/trading-engine/messages.ts):
 * the order id comes out in PostgreSQL's spelling (lower case), so a redelivered message spelling the
 * same id in upper case is recognised as the order the engine already executed.
 */
import { describe, expect, it } from "vitest";
import { commandOf } from "../../services/src/services/trading-engine/messages";
import { PoisonMessageError } from "../../services/src/trading/infra/deadLetters";
import { TOPICS } from "../../services/src/trading/events";

const order = (orderId: string) => ({ orderId, userId: "u1", symbol: "BTCUSDT", side: "buy", type: "market", quantity: "1" });

describe("trading-engine order messages", () => {
  it("an upper-case order id reads as the same, lower-case id", () => {
    const id = "0b3f6c1e-8d2a-4c5b-9e7f-1a2b3c4d5e6f";
    const upper = commandOf(TOPICS.orders, { type: "order.accepted", order: order(id.toUpperCase()) });
    const lower = commandOf(TOPICS.orders, { type: "order.accepted", order: order(id) });
    expect(upper).toEqual(lower);
    expect(upper.kind === "execute" && upper.order.orderId).toBe(id);
  });
  it("a cancel request's order id likewise", () => {
    const id = "0b3f6c1e-8d2a-4c5b-9e7f-1a2b3c4d5e6f";
    const c = commandOf(TOPICS.orders, { type: "order.pending_cancel", order: order(id.toUpperCase()) });
    expect(c.kind === "cancel" && c.order.orderId).toBe(id);
  });
  it("text te_orders' jsonb cannot hold (U+0000, an unpaired surrogate) in userId or clientOrderId is poison: refused before a live order is sent", () => {
    const id = "0b3f6c1e-8d2a-4c5b-9e7f-1a2b3c4d5e6f";
    for (const bad of [{ userId: "u\u0000" }, { clientOrderId: "c\u0000" }, { clientOrderId: "c\ud800" }]) {
      expect(() => commandOf(TOPICS.orders, { type: "order.accepted", order: { ...order(id), ...bad } })).toThrow(PoisonMessageError);
    }
    expect(commandOf(TOPICS.orders, { type: "order.accepted", order: { ...order(id), clientOrderId: "c\ud83d\ude00" } }).kind).toBe("execute");
  });
});
