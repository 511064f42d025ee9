/**
 * Deleting a strategy cancels its working orders (real PostgreSQL, Redis, a private Kafka;
 * order-management and the trading-engine in-process; ml-predictor stood in for by a small HTTP
 * server answering a buy). The strategy places market orders, which the paper exchange fills at
 * once against the last bar; a strategy's order that rests (a live exchange's, or one the engine
 * has not executed yet) is planted as a resting limit order of its owner, recorded on a decision
 * of the strategy the way an evaluation records its order. Covered:
 *   - DELETE requests the cancel through order-management: the resting order ends cancelled (the
 *     engine confirms); the filled ones, settled or not, are untouched; disabling kept it resting;
 *   - another user's DELETE is a 404 and cancels nothing;
 *   - order-management down during the DELETE: 503 + retry-after naming the order, the strategy is
 *     deleted all the same, the order rests; a repeated DELETE once it is back cancels it (204).
 * And the orders of decisions whose outcome was never recorded (recover.ts): a crash between the
 * submit and the outcome is played by recording a decision (decided a minute ago) and submitting
 * its order straight to order-management, as the evaluation does (clientOrderId and
 * Idempotency-Key the decision id):
 *   - found by its Idempotency-Key: counted in the next evaluation's book, cancelled by a DELETE;
 *   - never submitted: recorded as no order, and never submitted later; a decision younger than the
 *     submit's bound is left alone (503 ORDER_OUTCOME_PENDING) until it is older;
 *   - order-management down: the evaluation and the DELETE answer 503, nothing recorded;
 *   - order-management's lookup by Idempotency-Key answers the caller's own order only.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { kafkajs, pg, Redis } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { startOrderPathRig, type OrderPathRig } from "../helpers/order-path-rig";
import orderManagement from "../../services/src/services/order-management";
import tradingEngine from "../../services/src/services/trading-engine";
import aiOrchestrator from "../../services/src/services/ai-orchestrator";
import { TOPICS } from "../../services/src/trading/events";
import { ensureAccount } from "../helpers/accounts";
import { http, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("postgres", "redis");
const SYMBOL = "AAAUSDT";
/** Bound of a wait: it only guards against a hang on a loaded machine. */
const WAIT_MS = 60_000;
let rig: OrderPathRig;
let env: Record<string, string>;
let pool: InstanceType<typeof pg.Pool>;
let redis: InstanceType<typeof Redis>;
let producer: ReturnType<InstanceType<typeof kafkajs.Kafka>["producer"]>;
let om: { service: Service<any>; url: string; port: number };
let engine: { service: Service<any>; url: string };
let orch: Service<any>;
let ml: Server;

const as = (userId: string) => ({ "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" });
const orderOf = async (userId: string, id: string) => (await http("GET", `${om.url}/${id}`, { headers: as(userId) })).body;
const waitStatus = (userId: string, id: string, status: string) =>
  waitUntil(`order ${id} ${status}`, async () => {
    const o = await orderOf(userId, id);
    return o.status === status ? o : undefined;
  }, WAIT_MS);
const resting = async (userId: string) => ((await http("GET", `${engine.url}/book`, { headers: as(userId) })).body.resting as { orderId: string }[]).map((o) => o.orderId);
/** The order's events in om_outbox (its history on trading.orders), by state. */
const historyOf = async (id: string) => (await pool.query<{ e: string }>("SELECT split_part(event_id, ':', 2) AS e FROM om_outbox WHERE msg_key = $1 ORDER BY id", [id])).rows.map((r) => r.e);

async function startOm(port = 0): Promise<void> {
  const service = await createService(orderManagement, { env, defaultMetrics: false });
  const url = await service.listen({ port, host: "127.0.0.1" });
  om = { service, url, port: Number(new URL(url).port) };
}

const strategyOf = async (userId: string, maxPosition = 10) => {
  await ensureAccount(pool, userId);
  const r = await orch.app.inject({
    method: "POST", url: "/strategies", headers: as(userId),
    payload: { name: "s", symbols: [SYMBOL], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition, stopLoss: 1e9, enabled: true },
  });
  expect(r.statusCode, r.body).toBe(201);
  return r.json().strategyId as string;
};
const del = (userId: string, id: string) => orch.app.inject({ method: "DELETE", url: `/strategies/${id}`, headers: as(userId) });

/** An evaluation's market buy, filled at once by the paper exchange. */
async function filledBuy(userId: string, strategyId: string): Promise<string> {
  const r = await orch.app.inject({ method: "POST", url: `/strategies/${strategyId}/evaluate`, headers: as(userId) });
  expect(r.statusCode, r.body).toBe(200);
  const [d] = r.json().decisions;
  expect(d).toMatchObject({ action: "buy" });
  await waitStatus(userId, d.orderId, "filled");
  return d.orderId;
}

/** A limit buy below the market, resting in the engine, recorded as the strategy's order. */
async function restingBuy(userId: string, strategyId: string): Promise<string> {
  const o = (await http("POST", `${om.url}/`, { headers: as(userId), body: { symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice: "98" } })).body;
  expect(o.status, JSON.stringify(o)).toBe("accepted");
  await waitUntil(`order ${o.orderId} resting`, async () => (await resting(userId)).includes(o.orderId), WAIT_MS);
  await pool.query(
    `INSERT INTO ai_decisions (decision_id, strategy_id, user_id, symbol, trading_state, position_before, action, quantity, reason, order_id)
     VALUES ($1, $2, $3, $4, 'active', 0, 'buy', 1, 'p(up) above buyAbove', $5)`,
    [randomUUID(), strategyId, userId, SYMBOL, o.orderId],
  );
  return o.orderId;
}

beforeAll(async () => {
  rig = await startOrderPathRig(srv.env, { symbol: SYMBOL, lastPrice: "100", env: { LOG_LEVEL: "silent" } });
  ({ env, pool, redis, producer } = rig);
  await startOm();
  const service = await createService(tradingEngine, { env, defaultMetrics: false });
  engine = { service, url: await service.listen({ port: 0, host: "127.0.0.1" }) };
  // One closed bar: the paper exchange's last price for market orders.
  const openTime = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
  const bar = { symbol: SYMBOL, interval: "1m", openTime, closeTime: openTime + 59_999, open: "100", high: "100", low: "100", close: "100", volume: "1000" };
  await producer.send({ topic: TOPICS.candles, messages: [{ key: SYMBOL, value: JSON.stringify(bar) }] });
  await waitUntil("engine took the bar", async () => (await http("GET", `${engine.url}/last/${SYMBOL}`)).body.bar?.openTime === openTime, WAIT_MS);

  ml = createServer((_req, res) => {
    const barTime = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000).toISOString();
    const body = { modelVersion: "lgbm-test", intervalMs: 60_000, predictions: [{ symbol: SYMBOL, probabilityUp: 0.9, barTime, close: 100, features: {}, regimeVector: [] }] };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => ml.listen(0, "127.0.0.1", r));
  orch = await createService(aiOrchestrator, {
    env: { ...env, ORCH_TICK_MS: "0", SERVICE_ML_PREDICTOR_URL: `http://127.0.0.1:${(ml.address() as AddressInfo).port}`, SERVICE_ORDER_MANAGEMENT_URL: om.url },
    defaultMetrics: false,
  });
}, 300_000);

afterAll(async () => {
  await orch?.close().catch(() => undefined);
  ml?.close();
  await om?.service.close().catch(() => undefined);
  await engine?.service.close().catch(() => undefined);
  await rig?.stop();
}, 60_000);

describe("DELETE /strategies/:id cancels the strategy's working orders", () => {
  it("the resting order ends cancelled through the engine; filled ones are untouched; disable and a stranger's DELETE keep it", async () => {
    const user = randomUUID();
    const id = await strategyOf(user);
    // The first buy is settled by the second evaluation (known final); the second is filled but not yet known so.
    const settled = await filledBuy(user, id);
    const unsettled = await filledBuy(user, id);
    const working = await restingBuy(user, id);
    const filledBefore = await Promise.all([settled, unsettled].map((o) => orderOf(user, o)));

    // Disable is a pause: the working order stays.
    expect((await orch.app.inject({ method: "POST", url: `/strategies/${id}/disable`, headers: as(user) })).statusCode).toBe(200);
    // Another user's (an admin's too) DELETE: unknown strategy, nothing cancelled.
    for (const stranger of [as(randomUUID()), { ...as(randomUUID()), "x-user-role": "admin", "x-auth-method": "jwt" }])
      expect((await orch.app.inject({ method: "DELETE", url: `/strategies/${id}`, headers: stranger })).statusCode).toBe(404);
    // No pause needed: a DELETE requests its cancels before it answers (retire.ts), so a cancel either
    // asked would already be pending_cancel in order-management's history (no scheduler ticks here).
    expect((await orderOf(user, working)).status).toBe("accepted");
    expect(await historyOf(working)).toEqual(["new", "accepted"]);
    expect(await resting(user)).toEqual([working]);

    const r = await del(user, id);
    expect(r.statusCode, r.body).toBe(204);
    const done = await waitStatus(user, working, "cancelled");
    expect(done.filledQuantity).toBe("0");
    expect(await historyOf(working)).toEqual(["new", "accepted", "pending_cancel", "cancelled"]);
    expect(await resting(user)).toEqual([]);
    for (const [i, o] of [settled, unsettled].entries()) {
      expect(await orderOf(user, o)).toEqual(filledBefore[i]);
      expect(await historyOf(o)).toEqual(["new", "accepted", "filled"]);
    }
    // The strategy is deleted as before (kept with its decisions); a repeated DELETE is still a 204.
    expect((await orch.app.inject({ url: `/strategies/${id}`, headers: as(user) })).json().deletedAt).not.toBeNull();
    expect((await del(user, id)).statusCode).toBe(204);
    expect(await historyOf(working)).toEqual(["new", "accepted", "pending_cancel", "cancelled"]);
  }, 300_000);

  it("order-management down: 503 + retry-after naming the order, the strategy deleted; a repeated DELETE once it is back cancels it (204)", async () => {
    const user = randomUUID();
    const id = await strategyOf(user);
    const working = await restingBuy(user, id);
    const port = om.port;
    await om.service.close();

    const r = await del(user, id);
    expect(r.statusCode, r.body).toBe(503);
    expect(r.headers["retry-after"]).toBe("5");
    expect(r.json().error.code).toBe("ORDERS_NOT_CANCELLED");
    expect(r.json().error.message).toMatch(new RegExp(`^strategy ${id} is deleted, but the cancel of 1 of its working orders could not be requested \\(${working}: UPSTREAM_UNAVAILABLE`));
    // Nothing lost: the strategy is deleted (out of the list, never evaluated), the order still rests.
    expect((await orch.app.inject({ url: `/strategies/${id}`, headers: as(user) })).json().deletedAt).not.toBeNull();
    expect((await orch.app.inject({ url: "/strategies", headers: as(user) })).json().strategies).toEqual([]);
    expect((await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers: as(user) })).json().error.code).toBe("STRATEGY_DELETED");
    expect((await pool.query("SELECT status FROM om_orders WHERE order_id = $1", [working])).rows[0].status).toBe("accepted");
    expect(await resting(user)).toEqual([working]);

    await startOm(port);
    const again = await del(user, id);
    expect(again.statusCode, again.body).toBe(204);
    await waitStatus(user, working, "cancelled");
    expect(await resting(user)).toEqual([]);
  }, 300_000);
});

/** A buy decision of the strategy without a recorded outcome, decided `agoSeconds` ago (as an evaluation records it before its submit). */
async function unrecordedBuy(userId: string, strategyId: string, agoSeconds: number): Promise<string> {
  const decisionId = randomUUID();
  await pool.query(
    `INSERT INTO ai_decisions (decision_id, strategy_id, user_id, symbol, trading_state, position_before, action, quantity, reason, decided_at)
     VALUES ($1, $2, $3, $4, 'active', 0, 'buy', 1, 'p(up) above buyAbove', now() - $5 * interval '1 second')`,
    [decisionId, strategyId, userId, SYMBOL, agoSeconds],
  );
  return decisionId;
}
/** The decision's order as the evaluation submits it (a limit buy below the market: it rests), once resting. */
async function submitFor(userId: string, decisionId: string): Promise<string> {
  const o = (
    await http("POST", `${om.url}/`, {
      headers: { ...as(userId), "idempotency-key": decisionId },
      body: { symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice: "98", clientOrderId: decisionId },
    })
  ).body;
  expect(o.status, JSON.stringify(o)).toBe("accepted");
  await waitUntil(`order ${o.orderId} resting`, async () => (await resting(userId)).includes(o.orderId), WAIT_MS);
  return o.orderId;
}
const decisionOf = async (userId: string, decisionId: string) => (await orch.app.inject({ url: `/decisions/${decisionId}`, headers: as(userId) })).json();
const evaluate = (userId: string, strategyId: string) => orch.app.inject({ method: "POST", url: `/strategies/${strategyId}/evaluate`, headers: as(userId) });
/** Orders order-management holds under the decision's id (as client order id or Idempotency-Key), any user. */
const ordersUnder = async (decisionId: string) =>
  (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM om_orders WHERE client_order_id = $1 OR idempotency_key = $1", [decisionId])).rows[0].n;

describe("orders of decisions without a recorded outcome", () => {
  it("an order submitted before a crash is found: counted in the next evaluation's book and cancelled by DELETE", async () => {
    const user = randomUUID();
    const id = await strategyOf(user, 1);
    const decisionId = await unrecordedBuy(user, id, 60);
    const orderId = await submitFor(user, decisionId);

    // The working buy found takes the room under maxPosition 1: no second buy (it bought again).
    const r = await evaluate(user, id);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().decisions).toMatchObject([{ action: "hold", reason: "position 0 (+1 in working buys) at its limit 1", orderId: null }]);
    expect(await decisionOf(user, decisionId)).toMatchObject({ orderId, error: null, risk: { status: "accepted", recovered: true } });
    expect(await resting(user)).toEqual([orderId]);

    const d = await del(user, id);
    expect(d.statusCode, d.body).toBe(204);
    await waitStatus(user, orderId, "cancelled");
    expect(await resting(user)).toEqual([]);
  }, 300_000);

  it("a decision whose order never reached order-management is recorded as no order and never submitted; a young one waits", async () => {
    const user = randomUUID();
    const id = await strategyOf(user);
    const lost = await unrecordedBuy(user, id, 60);
    const r = await evaluate(user, id);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().decisions).toMatchObject([{ action: "buy" }]);
    const settled = await decisionOf(user, lost);
    expect(settled).toMatchObject({ orderId: null, risk: { status: "not_placed", recovered: true } });
    expect(settled.error).toMatch(new RegExp(`^no order was placed: order-management has no order under Idempotency-Key ${lost} 6\\d s after the decision`));
    expect(await ordersUnder(lost)).toBe(0);

    // Decided a moment ago: its submit may still be on its way. Left alone, and nothing acts on a book that may lack it.
    const young = await unrecordedBuy(user, id, 0);
    const waiting = await evaluate(user, id);
    expect(waiting.statusCode, waiting.body).toBe(503);
    expect(waiting.json().error.code).toBe("ORDER_OUTCOME_PENDING");
    expect(Number(waiting.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect((await decisionOf(user, young)).risk).toBeNull();
    await pool.query("UPDATE ai_decisions SET decided_at = now() - interval '1 minute' WHERE decision_id = $1", [young]);
    expect((await evaluate(user, id)).statusCode).toBe(200);
    expect(await decisionOf(user, young)).toMatchObject({ orderId: null, risk: { status: "not_placed" } });
    // Later evaluations leave the settled decisions as they are and submit nothing for them.
    expect((await evaluate(user, id)).statusCode).toBe(200);
    expect(await decisionOf(user, lost)).toEqual(settled);
    expect([await ordersUnder(lost), await ordersUnder(young)]).toEqual([0, 0]);
  }, 300_000);

  it("order-management down: the evaluation and the DELETE answer 503 + retry-after and record nothing; once back the DELETE cancels the order", async () => {
    const user = randomUUID();
    const id = await strategyOf(user);
    const decisionId = await unrecordedBuy(user, id, 60);
    const orderId = await submitFor(user, decisionId);
    const port = om.port;
    await om.service.close();
    try {
      const r = await evaluate(user, id);
      expect(r.statusCode, r.body).toBe(503);
      expect(r.headers["retry-after"]).toBe("1");
      expect(r.json().error.code).toBe("UPSTREAM_UNAVAILABLE");
      const d = await del(user, id);
      expect(d.statusCode, d.body).toBe(503);
      expect(d.headers["retry-after"]).toBe("1");
      expect(d.json().error.code).toBe("ORDERS_NOT_CANCELLED");
      expect(d.json().error.message).toMatch(new RegExp(`^strategy ${id} is deleted, but not all of its orders are known yet`));
      expect(await decisionOf(user, decisionId)).toMatchObject({ orderId: null, risk: null });
    } finally {
      await startOm(port);
    }
    const again = await del(user, id);
    expect(again.statusCode, again.body).toBe(204);
    expect((await decisionOf(user, decisionId)).orderId).toBe(orderId);
    await waitStatus(user, orderId, "cancelled");
  }, 300_000);

  it("order-management's lookup by Idempotency-Key answers the caller's own order only, never one that merely shares its client order id", async () => {
    const owner = randomUUID();
    const key = randomUUID();
    const placed = await submitFor(owner, key);
    // The owner places another order by hand reusing the decision id as its client order id only.
    const byHand = await http("POST", `${om.url}/`, { headers: as(owner), body: { symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice: "97", clientOrderId: key } });
    expect(byHand.status).toBe(201);
    const lookup = (headers: Record<string, string>, value: string = key) => http("GET", `${om.url}/?idempotencyKey=${encodeURIComponent(value)}`, { headers });
    const mine = await lookup(as(owner));
    expect(mine.status).toBe(200);
    expect(mine.body.orders.map((o: { orderId: string }) => o.orderId)).toEqual([placed]);
    // Another user's (an admin's too) lookup of the same id: nothing.
    for (const stranger of [as(randomUUID()), { ...as(randomUUID()), "x-user-role": "admin", "x-auth-method": "jwt" }]) expect((await lookup(stranger)).body).toEqual({ orders: [], nextBefore: null });
    expect((await lookup(as(owner), randomUUID())).body).toEqual({ orders: [], nextBefore: null });
    const bad = await lookup(as(owner), "not an id!");
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "VALIDATION_ERROR", field: "idempotencyKey" });
    // The resting orders are not left behind for the other tests' engine book.
    for (const id of [placed, byHand.body.orderId]) expect((await http("POST", `${om.url}/${id}/cancel`, { headers: as(owner) })).status).toBe(202);
  }, 300_000);
});
