/**
 * The end of a live order the trading-engine could not record (`order.expired` LIVE_ORDER_UNRECORDED,
 * trading-engine/sentOrders.ts publishEnd) applied by order-management (executions.ts
 * applyExecutions) to a real order in real PostgreSQL: the events are the ones the engine enqueued
 * in te_outbox, produced against the fake Binance (tests/fakes/binance.ts), and applied in one
 * transaction per batch as order-management's consumer does. The engine's order carries a
 * clientOrderId te_orders' jsonb refuses (U+0000: what makes its row unwritable), order-management's
 * order the same order id with the clientOrderId it stored.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import { migratedKitPostgres } from "../helpers/schemas";
import type { TradingEngine } from "../../services/src/services/trading-engine/engine";
import { testEngine } from "../helpers/engine";
import * as omData from "../../services/src/services/order-management/data";
import { outboxInsertStatement } from "../../services/src/trading/infra/outbox";
import { applyExecutions } from "../../services/src/services/order-management/executions";
import { BinanceTradingClient } from "../../services/src/trading/binance/adapter";
import type { ExecutionMsg } from "../../services/src/trading/events";
import { isRetriable } from "../../services/src/trading/infra/deadLetters";
import type { OrderRequest } from "../../services/src/trading/types";
import { FakeBinance } from "../fakes/binance";

const srv = useServers("postgres");
const fake = new FakeBinance("om-unrecorded-key", "om-unrecorded-secret");
let client: PostgresClient;
const warnings: { o: unknown; msg: string }[] = [];
const log = { info() {}, debug() {}, error() {}, warn: (o: unknown, msg: string) => warnings.push({ o, msg }), child() { return log; } } as unknown as ConstructorParameters<typeof TradingEngine>[0]["log"];
type OmLog = Parameters<typeof applyExecutions>[2];

const engineOn = () =>
  testEngine({ pg: client, log, live: { client: new BinanceTradingClient({ apiKey: fake.apiKey, secretKey: fake.secretKey, baseUrl: fake.url, get timeoutMs() { return fake.clientTimeoutMs; }, sleep: async () => {} }), quoteAsset: "USDT" } });
const symbolOf = () => `U${randomBytes(4).toString("hex").toUpperCase()}USDT`;

/** An order as order-management stores it once accepted (its own clientOrderId), and the engine's copy whose te_orders row cannot be written. */
async function acceptedOrder(symbol: string, o: { type: "market" | "limit"; quantity: string; limitPrice?: string }): Promise<OrderRequest> {
  const orderId = randomUUID();
  const userId = randomUUID();
  // Stored by order-management's own insert (its prepared statement, sent with COMMIT).
  const stored: omData.NewOrder = {
    orderId, userId, clientOrderId: `c-${orderId.slice(0, 8)}`, idempotencyKey: null, requestHash: "h", symbol, side: "buy", type: o.type,
    timeInForce: "GTC", quantity: o.quantity, limitPrice: o.limitPrice ?? null, status: "accepted", rejectReason: null, rejectMessage: null, lastPrice: "100",
  };
  await client.transaction((_tx, _begun, _each, commitWith) => omData.insertOrdersAndCommit(commitWith, [stored], []), { prepared: [omData.INSERT_ORDERS, outboxInsertStatement("om_outbox")] });
  return { orderId, userId, symbol, side: "buy", type: o.type, quantity: o.quantity, limitPrice: o.limitPrice, clientOrderId: "bad\u0000id" };
}

/** What the engine enqueued for an order (te_outbox), as order-management's consumer reads it from trading.executions. */
const engineEvents = async (orderId: string) =>
  (await client.query<{ payload: ExecutionMsg }>("SELECT payload FROM te_outbox WHERE payload->>'orderId' = $1 OR payload->'fill'->>'orderId' = $1 ORDER BY id", [orderId])).rows.map((r) => r.payload);
/** One batch applied as order-management's consumer applies it: one transaction. */
const applied = (msgs: ExecutionMsg[]) => client.transaction((c) => applyExecutions(c, msgs, log as unknown as OmLog));
const omOrder = async (orderId: string) =>
  (await client.query<{ status: string; filled_quantity: string; reject_reason: string | null }>("SELECT status, filled_quantity::text, reject_reason FROM om_orders WHERE order_id = $1", [orderId])).rows[0];
const omEvents = async (orderId: string) =>
  (await client.query<{ type: string; status: string; filled: string }>(
    "SELECT payload->>'type' AS type, payload->'order'->>'status' AS status, payload->'order'->>'filledQuantity' AS filled FROM om_outbox WHERE payload->'order'->>'orderId' = $1 ORDER BY id",
    [orderId],
  )).rows;
const omPosition = async (userId: string, symbol: string) =>
  (await client.query<{ quantity: string }>("SELECT quantity::text FROM om_positions WHERE user_id = $1 AND symbol = $2", [userId, symbol])).rows[0]?.quantity;

beforeAll(async () => {
  await fake.start();
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log as unknown as Parameters<typeof createPostgres>[1], 4);
}, 300_000);

afterAll(async () => {
  await client?.close();
  await fake.close();
});

describe("order-management applies the engine's end of an unrecorded live order (order.expired LIVE_ORDER_UNRECORDED)", () => {
  it("cancelled at Binance unfilled: the accepted order is closed expired with the reason; a redelivery changes nothing", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const engine = engineOn();
    await engine.load();
    const o = await acceptedOrder(s, { type: "limit", quantity: "1", limitPrice: "95" });
    await expect(engine.onBatch([{ kind: "execute", order: o }])).rejects.not.toSatisfy(isRetriable);
    const events = await engineEvents(o.orderId);
    expect(events.map((e) => [e.type, e.type === "order.expired" ? e.reason : undefined])).toEqual([["order.expired", "LIVE_ORDER_UNRECORDED"]]);

    const outcome = await applied(events);
    expect(outcome.changed).toBe(1);
    expect(await omOrder(o.orderId)).toEqual({ status: "expired", filled_quantity: "0", reject_reason: "LIVE_ORDER_UNRECORDED" });
    expect((await omEvents(o.orderId)).map((e) => [e.type, e.status])).toEqual([["order.expired", "expired"]]);

    expect((await applied(events)).changed).toBe(0); // redelivered
    expect(await omEvents(o.orderId)).toHaveLength(1);
  });

  it("filled in part at Binance before the cancel that ended it (the retry's): the fills first, then expired; the position moves by what filled", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const engine = engineOn();
    await engine.load();
    const o = await acceptedOrder(s, { type: "limit", quantity: "2", limitPrice: "95" });
    fake.failNext("DELETE", "/api/v3/order", "timeout-before"); // the first cancel unanswered: cancel_failed, nothing ended yet
    await expect(engine.onBatch([{ kind: "execute", order: o }])).rejects.not.toSatisfy(isRetriable);
    expect(await engineEvents(o.orderId)).toEqual([]);
    fake.fill(o.orderId, "0.5", "95");
    await expect(engine.onBatch([{ kind: "execute", order: o }])).rejects.not.toSatisfy(isRetriable); // the consumer's retry alone cancels it
    const events = await engineEvents(o.orderId);
    expect(events.map((e) => e.type)).toEqual(["fill", "order.expired"]);

    await applied(events);
    expect(await omOrder(o.orderId)).toEqual({ status: "expired", filled_quantity: "0.5", reject_reason: "LIVE_ORDER_UNRECORDED" });
    expect((await omEvents(o.orderId)).map((e) => [e.type, e.filled])).toEqual([["order.partially_filled", "0.5"], ["order.expired", "0.5"]]);
    expect(await omPosition(o.userId, s)).toBe("0.5");
    expect((await applied(events)).changed).toBe(0);
    expect(await omPosition(o.userId, s)).toBe("0.5");
  });

  it("its cancel unanswered and no redelivery: the live poll's retry of the cancel publishes the same end (its fills first), closed expired once", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const engine = engineOn();
    await engine.load();
    const o = await acceptedOrder(s, { type: "limit", quantity: "2", limitPrice: "95" });
    fake.failNext("DELETE", "/api/v3/order", "timeout-before"); // cancel_failed: it may still be open at Binance
    await expect(engine.onBatch([{ kind: "execute", order: o }])).rejects.not.toSatisfy(isRetriable);
    fake.fill(o.orderId, "0.5", "95");
    await engine.pollLive(); // no message: the poll tries the cancel again
    expect(fake.order(o.orderId)).toMatchObject({ status: "CANCELED", executedQty: "0.5" });
    const events = await engineEvents(o.orderId);
    expect(events.map((e) => [e.type, e.type === "order.expired" ? e.reason : undefined])).toEqual([["fill", undefined], ["order.expired", "LIVE_ORDER_UNRECORDED"]]);
    await engine.pollLive();
    await expect(engine.onBatch([{ kind: "execute", order: o }])).rejects.not.toSatisfy(isRetriable); // a replay: refused, nothing published again
    expect(await engineEvents(o.orderId)).toHaveLength(2);

    await applied(events);
    expect(await omOrder(o.orderId)).toEqual({ status: "expired", filled_quantity: "0.5", reject_reason: "LIVE_ORDER_UNRECORDED" });
    expect((await omEvents(o.orderId)).map((e) => [e.type, e.filled])).toEqual([["order.partially_filled", "0.5"], ["order.expired", "0.5"]]);
    expect(await omPosition(o.userId, s)).toBe("0.5");
  });

  it("its cancel requested by the user meanwhile (pending_cancel): expired, not left pending for ever", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const engine = engineOn();
    await engine.load();
    const o = await acceptedOrder(s, { type: "limit", quantity: "1", limitPrice: "95" });
    await client.query("UPDATE om_orders SET status = 'pending_cancel' WHERE order_id = $1", [o.orderId]);
    await expect(engine.onBatch([{ kind: "execute", order: o }])).rejects.not.toSatisfy(isRetriable);
    await applied(await engineEvents(o.orderId));
    expect(await omOrder(o.orderId)).toMatchObject({ status: "expired", reject_reason: "LIVE_ORDER_UNRECORDED" });
  });

  it("filled at once at Binance: no end event, the fills fill the order", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const engine = engineOn();
    await engine.load();
    const o = await acceptedOrder(s, { type: "market", quantity: "0.5" });
    await expect(engine.onBatch([{ kind: "execute", order: o }])).rejects.not.toSatisfy(isRetriable);
    const events = await engineEvents(o.orderId);
    expect(events.map((e) => e.type)).toEqual(["fill"]);
    await applied(events);
    expect(await omOrder(o.orderId)).toEqual({ status: "filled", filled_quantity: "0.5", reject_reason: null });
    expect(await omPosition(o.userId, s)).toBe("0.5");
  });
});
