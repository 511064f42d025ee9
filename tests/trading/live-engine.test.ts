/**
 * The trading-engine in live mode against a fake Binance (tests/fakes/binance.ts, Binance's REST
 * shapes) on real PostgreSQL, the engine driven directly (no Kafka):
 *   - a cancel reaches Binance (DELETE /api/v3/order by client order id) and is confirmed only as
 *     Binance's CANCELED; an order Binance already filled reports its fills instead; no answer
 *     confirms nothing (an outage: the consumer retries);
 *   - an order adopted after an unknown placement outcome gets its fills from GET /api/v3/myTrades;
 *     an outcome no attempt settled is an outage, never a rejection, and the retry reconciles first;
 *   - after a restart a live resting order is never paper-filled by a bar; the poll (and the first
 *     poll after load) reports what Binance did with it, and asks nothing while no live order rests;
 *   - the client order id at Binance is the platform's order id, not the user's clientOrderId;
 *   - a process killed between a send and its batch's COMMIT (its transaction never commits; a fresh
 *     engine over the same database takes the redelivery) places no order twice: the order recorded
 *     in te_live_sends before the send is looked up at Binance and adopted with its trades.
 *   - a batch that fails for good after its sends (the consumer then retries its messages alone and
 *     sets aside what still fails) first records what Binance answered for in its own transaction
 *     (a cancel Binance confirmed included: `cancelled`, not left for the poll to call `expired`);
 *     an order whose own row cannot be written is cancelled at Binance instead of left open there,
 *     and its fills and end (order.expired LIVE_ORDER_UNRECORDED) are published without that row;
 *   - a cancel sent by a process killed before its batch's COMMIT is known to the poll after the
 *     restart (te_orders.cancel_sent_at): Binance's CANCELED is reported cancelled, not expired; so
 *     is one sent in the batch that executed the order (te_live_sends.cancel_sent_at): the order
 *     adopted from Binance CANCELED is cancelled, one adopted resting carries the mark to te_orders;
 *   - an order an uncommitted attempt sent, then held by the kill switch, is looked up at Binance and
 *     adopted (resting: polled, its fills recorded, its cancel sent to Binance); held if Binance
 *     never had it; one already held (released and sent by a batch that failed or was killed) is
 *     looked up by the poll alone, no message needed, after a failure and right after a restart;
 *   - an order of a halted owner is not sent (held), its cancel needs no Binance, lifted it is sent;
 *     under reduce_only, an order that would grow the position is held and not sent, one that
 *     shrinks it is sent.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import { migratedKitPostgres } from "../helpers/schemas";
import type { TradingEngine } from "../../services/src/services/trading-engine/engine";
import { testEngine } from "../helpers/engine";
import { promClient } from "../harness/deps";
type PromRegistry = Parameters<typeof testEngine>[1];
import { leftSentOrders, markRefused, recordLiveSends, recordPlacement } from "../../services/src/services/trading-engine/liveSends";
import type { EngineCommand } from "../../services/src/services/trading-engine/messages";
import { BinanceTradingClient, toBinanceOrder } from "../../services/src/trading/binance/adapter";
import { isRetriable } from "../../services/src/trading/infra/deadLetters";
import { nextStatus, OPEN_STATUSES } from "../../services/src/trading/orderState";
import type { Bar, OrderRequest } from "../../services/src/trading/types";
import { FakeBinance } from "../fakes/binance";
import { createApp, createLogger } from "../../services/src/kit/app";
import { registerRoutes } from "../../services/src/services/trading-engine/routes";
import { waitUntil } from "./e2e-helpers";
import { atCommit } from "../helpers/engine-records";
import { BACKOFF_MS } from "../../services/src/services/trading-engine/leftSent";

const srv = useServers("postgres");
const SECRET = "engine-live-secret";
const fake = new FakeBinance("engine-live-key", SECRET);
let client: PostgresClient;
const warnings: string[] = [];
const errors: { o: unknown; msg: string }[] = [];
const log = { info() {}, debug() {}, error: (o: unknown, msg: string) => errors.push({ o, msg }), warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as ConstructorParameters<typeof TradingEngine>[0]["log"];

const binance = (secretKey = SECRET, recvWindow?: number) => new BinanceTradingClient({ apiKey: "engine-live-key", secretKey, baseUrl: fake.url, get timeoutMs() { return fake.clientTimeoutMs; }, recvWindow, sleep: async () => {} });
const engineOn = (opts: { pollMs?: number; secretKey?: string; pg?: PostgresClient; registry?: PromRegistry; recvWindow?: number; now?: () => number } = {}) =>
  testEngine({ pg: opts.pg ?? client, log, live: { client: binance(opts.secretKey, opts.recvWindow), quoteAsset: "USDT", pollMs: opts.pollMs }, now: opts.now }, opts.registry);
/** The clock of an engine's poll backoff, moved only when told: a test moves it past a backoff instead of waiting it out. */
function testClock() {
  let t = Date.now();
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}
/** te_live_orders_unrecorded_total by outcome, as the engine's registry holds it. */
const unrecorded = async (registry: NonNullable<PromRegistry>) =>
  Object.fromEntries((await registry.getSingleMetric("te_live_orders_unrecorded_total")!.get()).values.map((v) => [v.labels.outcome, v.value]));
/** A symbol of one test alone. */
const symbolOf = () => `L${randomBytes(4).toString("hex").toUpperCase()}USDT`;
const limitBuy = (symbol: string, limitPrice: string, quantity = "2", userId = "u-live"): OrderRequest => ({ orderId: randomUUID(), userId, symbol, side: "buy", type: "limit", quantity, limitPrice });
const marketBuy = (symbol: string, quantity: string, extra: Partial<OrderRequest> = {}): OrderRequest => ({ orderId: randomUUID(), userId: "u-live", symbol, side: "buy", type: "market", quantity, ...extra });
const execute = (order: OrderRequest): EngineCommand => ({ kind: "execute", order });
const cancel = (order: OrderRequest): EngineCommand => ({ kind: "cancel", order });
const bar = (symbol: string, openTime: number, close: string, low = close): Bar => ({ symbol, interval: "1m", openTime, closeTime: openTime + 59_999, open: close, high: close, low, close, volume: "1000" });

/** A loaded engine over a fresh symbol at `price` on the fake Binance. */
async function startedEngine(price = "100", registry?: PromRegistry, now?: () => number) {
  const s = symbolOf();
  fake.setPrice(s, price);
  const engine = engineOn({ registry, now });
  await engine.load();
  return { s, engine };
}

/** A loaded engine and a limit buy at 95 (below the price: it rests at Binance). */
async function restingBuy() {
  const { s, engine } = await startedEngine();
  const o = limitBuy(s, "95");
  await engine.onBatch([execute(o)]);
  return { s, engine, o };
}

const fillsOf = async (orderId: string) =>
  (await client.query<{ payload: { fillId: string; price: string; quantity: string; fee: string; liquidity: string } }>("SELECT payload FROM te_fills WHERE order_id = $1 ORDER BY fill_id", [orderId])).rows.map((r) => r.payload);
const rowOf = async (orderId: string) => (await client.query<{ status: string; remaining: string; fill_seq: number }>("SELECT status, remaining::text AS remaining, fill_seq FROM te_orders WHERE order_id = $1", [orderId])).rows[0];
/** The te_outbox events of an order (what order-management and portfolio-manager will hear), in commit order. */
const eventsOf = async (orderId: string) =>
  (await client.query<{ event_id: string; type: string; remaining: string | null; reason: string | null }>(
    "SELECT event_id, payload->>'type' AS type, payload->>'remaining' AS remaining, payload->>'reason' AS reason FROM te_outbox WHERE payload->>'orderId' = $1 OR payload->'fill'->>'orderId' = $1 ORDER BY id",
    [orderId],
  )).rows;
/** te_live_sends.sent_at of an order as epoch ms (null: no placement sent), or undefined without a record. */
const lastSentAt = async (orderId: string) =>
  (await client.query<{ ms: number | null }>("SELECT (extract(epoch FROM sent_at) * 1000)::float8 AS ms FROM te_live_sends WHERE order_id = $1", [orderId])).rows[0]?.ms;
/** Whether te_live_sends says Binance refused for good to answer about the order (migration 0404), and its message. */
const refusalOf = async (orderId: string) =>
  (await client.query<{ refused: boolean; refusal: string | null }>("SELECT refused_at IS NOT NULL AS refused, refusal FROM te_live_sends WHERE order_id = $1", [orderId])).rows[0];
/**
 * Binance's recvWindow for the engines below (ms): a placement may land until 1 s more has passed (Binance's tolerance for a clock ahead of its own).
 * The engine sends a placement only if recording it took less than half of this (live.ts): 1.5 s for a
 * loaded machine's pause inside one INSERT (500 ms before, with 1 s, and then "not sent, the batch waits").
 */
const RECV_WINDOW = 3000;
const windowPassed = (sentAt: number) => waitUntil("recvWindow + 1 s passed since the placement", async () => Date.now() > sentAt + RECV_WINDOW + 1000, RECV_WINDOW + 1000 + 10_000, 50);
const atBinanceOf = (o: OrderRequest) => fake.orders.filter((b) => b.clientOrderId === o.orderId);
const tradeIds = (orderId: string) => fake.trades.filter((t) => t.orderId === fake.order(orderId)!.orderId).map((t) => t.id);

beforeAll(async () => {
  await fake.start();
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log as unknown as Parameters<typeof createPostgres>[1], 4);
}, 300_000);

afterAll(async () => {
  await client?.close();
  await fake.close();
});

describe("live cancel: it reaches Binance, and only Binance's answer confirms it", () => {
  it("a resting order is cancelled at Binance by its client order id; the cancel is confirmed for the rest", async () => {
    const { s, engine, o } = await restingBuy();
    expect(fake.order(o.orderId)?.status).toBe("NEW");
    expect([...engine.restingOf()].map((r) => r.order.orderId)).toContain(o.orderId);

    await engine.onBatch([cancel(o)]);
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `DELETE /api/v3/order ${o.orderId}`]);
    expect(fake.order(o.orderId)?.status).toBe("CANCELED");
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled", remaining: "2" });
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.remaining])).toEqual([["order.cancelled", "2"]]);
    expect([...engine.restingOf()].map((r) => r.order.orderId)).not.toContain(o.orderId);
  });

  it("an order Binance filled before the cancel: its fills are reported, no cancel is confirmed", async () => {
    const { s, engine, o } = await restingBuy();
    fake.fill(o.orderId, "2");

    await engine.onBatch([cancel(o)]);
    // DELETE answers -2011 (not open): the order is queried, then its trades fetched.
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `DELETE /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]);
    const [tradeId] = tradeIds(o.orderId);
    expect(await fillsOf(o.orderId)).toEqual([expect.objectContaining({ fillId: `${o.orderId}:bn${tradeId}`, price: "95", quantity: "2", fee: "0.19", liquidity: "maker" })]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "filled", remaining: "0", fill_seq: 1 });
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]); // pending_cancel + fill -> filled
  });

  it("a partly filled order: the fills first, then the cancel confirmed for what Binance did not execute", async () => {
    const { s, engine, o } = await restingBuy();
    fake.fill(o.orderId, "0.5");

    await engine.onBatch([cancel(o)]);
    expect(fake.order(o.orderId)).toMatchObject({ status: "CANCELED", executedQty: "0.5" });
    expect((await fillsOf(o.orderId)).map((f) => f.quantity)).toEqual(["0.5"]);
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.remaining])).toEqual([["fill", null], ["order.cancelled", "1.5"]]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled", remaining: "1.5", fill_seq: 1 });
  });

  it("no answer from Binance confirms nothing: an outage the consumer retries; the retry confirms Binance's CANCELED once", async () => {
    const { s, engine, o } = await restingBuy();

    fake.failNext("DELETE", "/api/v3/order", "timeout-before");
    await expect(engine.onBatch([cancel(o)])).rejects.toSatisfy(isRetriable);
    expect(fake.order(o.orderId)?.status).toBe("NEW");
    expect(await rowOf(o.orderId)).toMatchObject({ status: "resting" });

    // Binance cancels it but answers 503: still nothing confirmed.
    fake.failNext("DELETE", "/api/v3/order", "503-after");
    await expect(engine.onBatch([cancel(o)])).rejects.toSatisfy(isRetriable);
    expect(fake.order(o.orderId)?.status).toBe("CANCELED");
    expect(await eventsOf(o.orderId)).toEqual([]);

    await engine.onBatch([cancel(o)]); // the consumer's retry: -2011, queried: CANCELED
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.remaining])).toEqual([["order.cancelled", "2"]]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled" });
    await engine.onBatch([cancel(o)]); // redelivered: the order is finished, nothing more
    expect(await eventsOf(o.orderId)).toHaveLength(1);
  });

  it("a cancel Binance applied but whose answer was lost: a poll before the consumer's retry reports it cancelled, not expired; the retry adds nothing", async () => {
    const { engine, o } = await restingBuy();
    fake.failNext("DELETE", "/api/v3/order", "503-after");
    await expect(engine.onBatch([cancel(o)])).rejects.toSatisfy(isRetriable);
    expect(fake.order(o.orderId)?.status).toBe("CANCELED");
    expect(await rowOf(o.orderId)).toMatchObject({ status: "resting" });

    await engine.pollLive();
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled", remaining: "2" });
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.remaining, e.reason])).toEqual([["order.cancelled", "2", "CANCELLED_ON_REQUEST"]]);
    await engine.onBatch([cancel(o)]);
    expect(await eventsOf(o.orderId)).toHaveLength(1);
  });
});

describe("reconciliation after an unknown placement outcome", () => {
  it("an order adopted from GET /api/v3/order (no fills in it) gets its fills from myTrades, once", async () => {
    const { s, engine } = await startedEngine("101.5");
    const o = marketBuy(s, "0.5");
    fake.failNext("POST", "/api/v3/order", "503-after"); // created and filled, answered 503
    await engine.onBatch([execute(o)]);
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]);
    expect(fake.log.filter((l) => l.startsWith("GET /api/v3/myTrades")).at(-1)).toBe(`GET /api/v3/myTrades ${fake.order(o.orderId)!.orderId}`);
    const [tradeId] = tradeIds(o.orderId);
    expect(await fillsOf(o.orderId)).toEqual([expect.objectContaining({ fillId: `${o.orderId}:bn${tradeId}`, price: "101.5", quantity: "0.5", fee: "0.05075", liquidity: "taker" })]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "filled", remaining: "0" });

    await engine.onBatch([execute(o), execute(o)]); // redelivered
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(fake.orders.filter((b) => b.clientOrderId === o.orderId)).toHaveLength(1);
  });

  it("an outcome no attempt settled is an outage, not a rejection; the retry looks first and adopts the filled order", async () => {
    const { s, engine } = await startedEngine();
    const o = marketBuy(s, "1");
    fake.failNext("POST", "/api/v3/order", "timeout-after"); // created and filled at Binance, never answered
    fake.failNext("GET", "/api/v3/order", "503-before", 3); // and the queries get no answer
    const err = await engine.onBatch([execute(o)]).catch((e: unknown) => e);
    expect(isRetriable(err)).toBe(true);
    expect(await rowOf(o.orderId)).toBeUndefined();
    expect(await eventsOf(o.orderId)).toEqual([]); // no order.rejected

    await engine.onBatch([execute(o)]); // the consumer's retry
    expect(fake.requests(o.orderId).filter((l) => l.startsWith("POST"))).toHaveLength(1); // never sent twice
    expect(fake.requests(o.orderId).at(-1)).toBe(`GET /api/v3/order ${o.orderId}`);
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "filled" });
  });

  it("an order Binance never received (unknown, then -2013 on the retry) is placed once, by a retry after the first placement's recvWindow", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const engine = engineOn({ recvWindow: RECV_WINDOW });
    await engine.load();
    const o = marketBuy(s, "1");
    fake.failNext("POST", "/api/v3/order", "503-before");
    fake.failNext("GET", "/api/v3/order", "timeout-before", 3);
    await expect(engine.onBatch([execute(o)])).rejects.toSatisfy(isRetriable);
    expect(fake.order(o.orderId)).toBeUndefined();

    // A 503 does not say the request is done with: Binance may still apply it within its recvWindow.
    await expect(engine.onBatch([execute(o)])).rejects.toSatisfy(isRetriable);
    expect(fake.requests(o.orderId).filter((l) => l.startsWith("POST"))).toHaveLength(1);
    await windowPassed((await lastSentAt(o.orderId))!);
    await engine.onBatch([execute(o)]);
    expect(fake.requests(o.orderId).slice(-2)).toEqual([`GET /api/v3/order ${o.orderId}`, `POST /api/v3/order ${o.orderId}`]);
    expect(fake.orders.filter((b) => b.clientOrderId === o.orderId)).toHaveLength(1);
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]);
  });

  it("a placement unanswered and still on its way, its lookup answered -2013: not sent again by that attempt (an outage); the retry after its recvWindow adopts the order that landed, placed once", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const engine = engineOn({ recvWindow: RECV_WINDOW });
    await engine.load();
    const o = marketBuy(s, "1");
    fake.failNext("POST", "/api/v3/order", "in-flight"); // the client times out; Binance has not seen it yet
    await expect(engine.onBatch([execute(o)])).rejects.toSatisfy(isRetriable);
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]);
    expect(await eventsOf(o.orderId)).toEqual([]); // no order.rejected
    expect(fake.landInFlight()).toMatchObject([{ status: 200, body: { status: "FILLED" } }]);
    await windowPassed((await lastSentAt(o.orderId))!);
    await engine.onBatch([execute(o)]);
    expect(fake.requests(o.orderId).filter((l) => l.startsWith("POST"))).toHaveLength(1);
    expect(atBinanceOf(o)).toHaveLength(1);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "filled", remaining: "0" });
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]);
  });

  it("a filled order whose trades Binance has not published yet is not recorded without them: an outage, then its fills", async () => {
    const { s, engine } = await startedEngine();
    const o = marketBuy(s, "1");
    fake.failNext("POST", "/api/v3/order", "503-after");
    const lagging = fake.orders.length + 1; // the fake's next Binance order id
    fake.tradesLagging.add(lagging);
    await expect(engine.onBatch([execute(o)])).rejects.toSatisfy(isRetriable);
    expect(fake.order(o.orderId)?.orderId).toBe(lagging);
    expect(await rowOf(o.orderId)).toBeUndefined(); // not "expired", not "filled" without fills

    fake.tradesLagging.delete(lagging);
    await engine.onBatch([execute(o)]);
    expect((await fillsOf(o.orderId)).map((f) => f.quantity)).toEqual(["1"]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "filled" });
    expect(fake.orders.filter((b) => b.clientOrderId === o.orderId)).toHaveLength(1);
  });

  it("an order Binance already has open (sent before a crash, -2010 duplicate) is adopted, not rejected", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const o = limitBuy(s, "90", "1");
    await binance().placeOrderReconciled(toBinanceOrder(o)); // sent by an engine that died before its commit
    const engine = engineOn();
    await engine.load();
    await engine.onBatch([execute(o)]);
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `POST /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]);
    expect(fake.orders.filter((b) => b.clientOrderId === o.orderId)).toHaveLength(1);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "resting", remaining: "1" });
    expect(await eventsOf(o.orderId)).toEqual([]);
  });

  it("an answer cut off in its body (the order placed, the connection dropped) is an unknown outcome, reconciled: adopted, never recorded rejected", async () => {
    const { s, engine } = await startedEngine();
    const o = marketBuy(s, "1");
    fake.failNext("POST", "/api/v3/order", "cut-after");
    await engine.onBatch([execute(o)]);
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]);
    expect(fake.orders.filter((b) => b.clientOrderId === o.orderId)).toHaveLength(1);
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "filled", remaining: "0" });
  });

  it("a refusal whose message would be cut inside a surrogate pair (or holds U+0000) is recorded rejected with a storable reason, not failed for good", async () => {
    const { s, engine } = await startedEngine();
    const prefix = "BINANCE: binance answered 400 (code -1013): ";
    // Astral characters from an odd index on: the reason's cut at 200 code units falls between a pair's halves.
    const msg = `\u0000${(prefix.length + 1) % 2 === 1 ? "" : "x"}${"\u{1F4A5}".repeat(150)}`;
    fake.failNext("POST", "/api/v3/order", { status: 400, code: -1013, msg });
    const o = marketBuy(s, "1");
    await engine.onBatch([execute(o)]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "rejected" });
    const [rejected] = await eventsOf(o.orderId);
    expect(rejected).toMatchObject({ type: "order.rejected" });
    expect(rejected.reason).toMatch(/^BINANCE: binance answered 400 \(code -1013\): \ufffdx?\u{1F4A5}+\ufffd$/u);
  });

  it("a definitive refusal (4xx) is still a rejection", async () => {
    const s = symbolOf();
    const engine = engineOn({ secretKey: "not-the-secret" });
    await engine.load();
    const o = marketBuy(s, "1");
    await engine.onBatch([execute(o)]);
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.rejected", expect.stringMatching(/^BINANCE: .*-1022/)]]);
  });
});

describe("restart: a live resting order is Binance's, never the paper book's", () => {
  it("a bar crossing it after a restart fills nothing; the poll reports Binance's fill", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const t0 = Date.UTC(2026, 2, 1);
    const before = engineOn();
    await before.load();
    await before.onBatch([{ kind: "bars", bars: [bar(s, t0, "100")] }]);
    const o = limitBuy(s, "95", "1");
    await before.onBatch([execute(o)]);

    const engine = engineOn(); // restarted
    await engine.load();
    expect([...engine.restingOf()].map((r) => r.order.orderId)).toContain(o.orderId);
    await engine.onBatch([{ kind: "bars", bars: [bar(s, t0 + 60_000, "92", "90")] }]);
    expect(await fillsOf(o.orderId)).toEqual([]); // no paper fill
    expect(await rowOf(o.orderId)).toMatchObject({ status: "resting" });

    await engine.pollLive(); // Binance has not filled it either: nothing
    expect(await eventsOf(o.orderId)).toEqual([]);
    fake.fill(o.orderId, "1", "94.5");
    await engine.pollLive();
    const [tradeId] = tradeIds(o.orderId);
    expect((await fillsOf(o.orderId)).map((f) => [f.fillId, f.price, f.liquidity])).toEqual([[`${o.orderId}:bn${tradeId}`, "94.5", "maker"]]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "filled", remaining: "0" });
    expect([...engine.restingOf()].map((r) => r.order.orderId)).not.toContain(o.orderId);
  });

  it("on start, the orders that rested while the engine was down are reconciled: filled, ended, partly filled, still open", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const before = engineOn();
    await before.load();
    const [filled, ended, partial, open] = [limitBuy(s, "95", "1"), limitBuy(s, "94", "1"), limitBuy(s, "93", "1"), limitBuy(s, "92", "1")];
    await before.onBatch([filled, ended, partial, open].map(execute));
    // While the engine is down:
    fake.fill(filled.orderId, "1");
    fake.endOrder(ended.orderId, "CANCELED");
    fake.fill(partial.orderId, "0.4");

    const engine = engineOn({ pollMs: 50 });
    await engine.load();
    engine.startLivePolling(); // the first poll runs at once
    await waitUntil("reconciled", async () => (await rowOf(partial.orderId)).remaining === "0.6", 10_000, 50);
    await engine.stopLivePolling();
    expect(await rowOf(filled.orderId)).toMatchObject({ status: "filled", remaining: "0" });
    expect((await eventsOf(filled.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(await rowOf(ended.orderId)).toMatchObject({ status: "expired" });
    expect((await eventsOf(ended.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.expired", "BINANCE_CANCELED"]]);
    expect(await rowOf(partial.orderId)).toMatchObject({ status: "resting", remaining: "0.6", fill_seq: 1 });
    expect((await eventsOf(partial.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(await rowOf(open.orderId)).toMatchObject({ status: "resting", remaining: "1" });
    expect(await eventsOf(open.orderId)).toEqual([]);
    expect([...engine.restingOf()].map((r) => r.order.orderId).filter((id) => [filled, ended, partial, open].some((x) => x.orderId === id)).sort()).toEqual([partial.orderId, open.orderId].sort());

    // The rest of the partly filled order fills later: the next poll reports only the new trade.
    fake.fill(partial.orderId, "0.6");
    await engine.pollLive();
    expect((await fillsOf(partial.orderId)).map((f) => f.quantity).sort()).toEqual(["0.4", "0.6"]);
    expect((await eventsOf(partial.orderId)).map((e) => e.type)).toEqual(["fill", "fill"]);
    expect(await rowOf(partial.orderId)).toMatchObject({ status: "filled", remaining: "0", fill_seq: 2 });
  });

  it("with no live order resting, polling asks Binance nothing", async () => {
    // No resting order in this file's database any more (the earlier tests' ones are set aside).
    await client.query("UPDATE te_orders SET status = 'cancelled' WHERE status = 'resting'");
    const engine = engineOn({ pollMs: 20 });
    await engine.load();
    const seen = fake.log.length;
    // The polls the interval starts, counted: several of them ran (each awaited by the next tick or by stopLivePolling).
    let polls = 0;
    const pollLive = engine.pollLive.bind(engine);
    engine.pollLive = () => (polls++, pollLive());
    engine.startLivePolling();
    await waitUntil("five polls of the interval", async () => polls >= 5, 30_000, 10);
    await engine.stopLivePolling();
    expect(fake.log.length).toBe(seen);
  });
});

describe("client order id at Binance", () => {
  it("is the platform's order id: two users sending the same clientOrderId each get their own order, adopted correctly", async () => {
    const { s, engine } = await startedEngine();
    const mine = { ...limitBuy(s, "90", "1", "u-one"), clientOrderId: "my-1" };
    const theirs = { ...limitBuy(s, "91", "3", "u-two"), clientOrderId: "my-1" };
    await engine.onBatch([execute(mine)]);
    fake.failNext("POST", "/api/v3/order", "503-after"); // the second is reconciled by its client order id
    await engine.onBatch([execute(theirs)]);
    expect(fake.orders.filter((b) => b.symbol === s).map((b) => [b.clientOrderId, b.origQty])).toEqual([[mine.orderId, "1"], [theirs.orderId, "3"]]);
    expect(fake.log.some((l) => l.endsWith(" my-1"))).toBe(false);
    expect(await rowOf(mine.orderId)).toMatchObject({ status: "resting", remaining: "1" });
    expect(await rowOf(theirs.orderId)).toMatchObject({ status: "resting", remaining: "3" });
  });
});

describe("a crash between a send to Binance and the batch's COMMIT", () => {
  /**
   * The kit's client whose first transaction dies after its work and before COMMIT (a process
   * SIGKILLed there: PostgreSQL rolls back); the dead process does nothing more (any later statement
   * fails as a lost connection would).
   */
  const killedBeforeCommit = (): PostgresClient => {
    let dead = false;
    const gone = () => Promise.reject(Object.assign(new Error("process killed"), { code: "ECONNRESET" }));
    return {
      ...client,
      query: ((text: string, values?: unknown[]) => (dead ? gone() : client.query(text, values))) as PostgresClient["query"],
      transaction: ((fn, opts) =>
        dead
          ? gone()
          : client.transaction(
              (...args) =>
                atCommit(fn, args, () => {
                  dead = true;
                  throw new Error("killed before COMMIT");
                }),
              opts,
            )) as PostgresClient["transaction"],
    };
  };
  /** An engine that sends `orders` to Binance in one batch and dies before its COMMIT. */
  async function crashedAfterSending(orders: OrderRequest[]) {
    const crashed = engineOn({ pg: killedBeforeCommit() });
    await crashed.load();
    await expect(crashed.onBatch(orders.map(execute))).rejects.toThrow();
  }
  const recordedSends = async (ids: string[]) => (await client.query<{ id: string }>("SELECT order_id::text AS id FROM te_live_sends WHERE order_id = ANY($1::uuid[]) ORDER BY 1", [ids])).rows.map((r) => r.id);
  const atBinance = (o: OrderRequest) => fake.orders.filter((b) => b.clientOrderId === o.orderId);

  it("after the restart, the filled and the resting order are adopted from Binance, never placed again", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const [filled, resting] = [marketBuy(s, "0.5"), limitBuy(s, "95", "1")];
    await crashedAfterSending([filled, resting]);
    expect(atBinance(filled)).toMatchObject([{ status: "FILLED" }]);
    expect(atBinance(resting)).toMatchObject([{ status: "NEW" }]);
    expect(await rowOf(filled.orderId)).toBeUndefined(); // nothing of the batch committed
    expect(await recordedSends([filled.orderId, resting.orderId])).toEqual([filled.orderId, resting.orderId].sort());

    const engine = engineOn(); // the restarted process: nothing in memory
    await engine.load();
    await engine.onBatch([execute(filled), execute(resting)]); // Kafka redelivers the uncommitted batch
    for (const o of [filled, resting]) {
      expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]);
      expect(atBinance(o)).toHaveLength(1);
    }
    const [tradeId] = tradeIds(filled.orderId);
    expect(await fillsOf(filled.orderId)).toEqual([expect.objectContaining({ fillId: `${filled.orderId}:bn${tradeId}`, price: "100", quantity: "0.5", liquidity: "taker" })]);
    expect((await eventsOf(filled.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(await rowOf(filled.orderId)).toMatchObject({ status: "filled", remaining: "0", fill_seq: 1 });
    expect(await rowOf(resting.orderId)).toMatchObject({ status: "resting", remaining: "1" });
    expect([...engine.restingOf()].map((r) => r.order.orderId)).toContain(resting.orderId);
    expect(await recordedSends([filled.orderId, resting.orderId])).toEqual([]); // the commit deleted them

    await engine.onBatch([execute(filled), execute(resting)]); // redelivered again: te_orders knows them
    expect(fake.requests(filled.orderId)).toHaveLength(2);
    expect(await fillsOf(filled.orderId)).toHaveLength(1);
  });

  it("killed between the record and the send: Binance does not know the order, so it is placed once", async () => {
    const { s, engine } = await startedEngine("101");
    const o = marketBuy(s, "1");
    await recordLiveSends(client, [o.orderId]); // all the killed process did before dying
    await engine.onBatch([execute(o)]);
    expect(fake.requests(o.orderId)).toEqual([`GET /api/v3/order ${o.orderId}`, `POST /api/v3/order ${o.orderId}`]);
    expect(atBinance(o)).toHaveLength(1);
    expect((await fillsOf(o.orderId)).map((f) => [f.price, f.quantity])).toEqual([["101", "1"]]);
    expect(await recordedSends([o.orderId])).toEqual([]);
  });

  it("no redelivery: the restarted engine's poll alone adopts the orders from Binance (the filled one's fill, the resting one polled); the redelivery then sends nothing", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const [filled, resting] = [marketBuy(s, "0.5"), limitBuy(s, "95", "1")];
    await crashedAfterSending([filled, resting]);
    const engine = engineOn();
    await engine.load();
    await engine.pollLive();
    for (const o of [filled, resting]) expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]);
    const [tradeId] = tradeIds(filled.orderId);
    expect(await fillsOf(filled.orderId)).toEqual([expect.objectContaining({ fillId: `${filled.orderId}:bn${tradeId}`, quantity: "0.5" })]);
    expect((await eventsOf(filled.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(await rowOf(filled.orderId)).toMatchObject({ status: "filled", remaining: "0", fill_seq: 1 });
    expect(await rowOf(resting.orderId)).toMatchObject({ status: "resting", remaining: "1" });
    expect(await recordedSends([filled.orderId, resting.orderId])).toEqual([]);

    fake.fill(resting.orderId, "0.25");
    await engine.pollLive(); // polled as any resting live order
    expect((await fillsOf(resting.orderId)).map((f) => f.quantity)).toEqual(["0.25"]);
    await engine.onBatch([execute(filled), execute(resting)]); // the redelivery: te_orders knows them
    expect(fake.requests(filled.orderId)).toHaveLength(2);
    expect(atBinance(filled)).toHaveLength(1);
    expect(await fillsOf(filled.orderId)).toHaveLength(1);
    expect((await eventsOf(filled.orderId)).map((e) => e.type)).toEqual(["fill"]);
  });

  it("the redelivery first: the poll finds the records gone and asks Binance nothing more", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const o = marketBuy(s, "0.5");
    await crashedAfterSending([o]);
    const engine = engineOn();
    await engine.load(); // it knows of the record
    await engine.onBatch([execute(o)]);
    await engine.pollLive();
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]);
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]);
  });

  it("a batch elsewhere (another replica's redelivery) records the order while the poll asks Binance: the poll's insert finds its row and records nothing (no event twice)", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const o = marketBuy(s, "0.5");
    await crashedAfterSending([o]);
    // That batch commits between the poll's lookup and its recording: its row written (its fill and events are its own to enqueue), its record deleted.
    const elsewhere = async () => {
      await client.query("INSERT INTO te_orders (order_id, payload, status, remaining, fill_seq) VALUES ($1, $2, 'filled', 0, 1)", [o.orderId, JSON.stringify(o)]);
      await client.query("DELETE FROM te_live_sends WHERE order_id = $1", [o.orderId]);
    };
    const pg: PostgresClient = { ...client, transaction: (async (fn, opts) => (await elsewhere(), client.transaction(fn, opts))) as PostgresClient["transaction"] };
    const engine = engineOn({ pg });
    await engine.load();
    const warned = warnings.length;
    await engine.pollLive();
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]); // the poll asked
    expect(await rowOf(o.orderId)).toMatchObject({ status: "filled", fill_seq: 1 });
    expect(await eventsOf(o.orderId)).toEqual([]); // the poll recorded nothing: no fill, no event
    expect(await fillsOf(o.orderId)).toEqual([]);
    expect(await recordedSends([o.orderId])).toEqual([]);
    expect(warnings.slice(warned)).not.toContain("live poll failed; the next poll tries again");
  });

  it("a placement that never reached Binance: the poll's -2013 is no answer until recvWindow has passed, then trusted: nothing adopted, not asked again; the redelivery places it once", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const o = marketBuy(s, "1");
    fake.failNext("POST", "/api/v3/order", "timeout-before"); // held by the fake, never applied: Binance never got it
    const crashed = engineOn({ pg: killedBeforeCommit(), recvWindow: RECV_WINDOW });
    await crashed.load();
    await expect(crashed.onBatch([execute(o)])).rejects.toThrow();
    const sentAt = (await lastSentAt(o.orderId))!;
    expect(sentAt).toBeGreaterThan(0);
    const engine = engineOn({ recvWindow: RECV_WINDOW });
    await engine.load();
    await engine.pollLive();
    const asked = fake.requests(o.orderId).filter((l) => l.startsWith("GET")).length;
    expect(asked).toBeGreaterThan(0); // asked, -2013 while the placement may still land: no answer
    expect(await recordedSends([o.orderId])).toEqual([o.orderId]);
    await windowPassed(sentAt);
    await waitUntil("the poll asked again after the window", async () => (await engine.pollLive(), fake.requests(o.orderId).filter((l) => l.startsWith("GET")).length > asked), 10_000, 100);
    const lookups = fake.requests(o.orderId).length;
    await engine.pollLive();
    expect(fake.requests(o.orderId)).toHaveLength(lookups); // trusted: not asked again
    expect(await rowOf(o.orderId)).toBeUndefined();
    expect(await recordedSends([o.orderId])).toEqual([o.orderId]); // the redelivery's to settle

    await engine.onBatch([execute(o)]);
    expect(atBinance(o)).toMatchObject([{ status: "FILLED" }]);
    expect(fake.requests(o.orderId).filter((l) => l.startsWith("POST"))).toHaveLength(2); // the lost one and this one
    expect(await rowOf(o.orderId)).toMatchObject({ status: "filled" });
  });

  it("the poll's lookup refused for good (a 4xx): written to the record, so a restarted engine asks no more; a person clearing it, or a new placement, has it asked again", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const o = limitBuy(s, "95", "1");
    await crashedAfterSending([o]);
    const gets = () => fake.requests(o.orderId).filter((l) => l.startsWith("GET")).length;
    const engine = engineOn();
    await engine.load();
    // A message text cannot hold as it comes (U+0000) and cut at 500 code units inside a surrogate pair.
    const msg = `Invalid API-key, IP, or permissions for action.\u0000 ${"x".repeat(445)}${"😀".repeat(40)}`;
    fake.failNext("GET", "/api/v3/order", { status: 400, code: -2015, msg });
    await engine.pollLive();
    expect(gets()).toBe(1);
    expect(await refusalOf(o.orderId)).toEqual({ refused: true, refusal: expect.stringContaining("Invalid API-key, IP, or permissions for action.") });
    expect(errors.map((e) => e.o)).toContainEqual(expect.objectContaining({ orderId: o.orderId, recorded: true }));
    await engine.pollLive();
    expect(gets()).toBe(1); // not asked again by this process

    const errorsBefore = errors.length;
    const clock = testClock();
    const restarted = engineOn({ now: clock.now });
    await restarted.load(); // before migration 0404 the refusal lived in memory: a restart asked again
    expect(errors.slice(errorsBefore)).toContainEqual(expect.objectContaining({ o: { refused: expect.any(Number) } }));
    clock.advance(BACKOFF_MS + 1); // past the first backoff: only the refusal keeps it from being asked
    await restarted.pollLive();
    expect(gets()).toBe(1);
    expect(atBinance(o)).toMatchObject([{ status: "NEW" }]);

    await client.query("UPDATE te_live_sends SET refused_at = NULL WHERE order_id = $1", [o.orderId]); // a person has fixed the key
    const afterFix = engineOn();
    await afterFix.load();
    await afterFix.pollLive();
    expect(gets()).toBe(2); // asked again, and adopted
    expect(await rowOf(o.orderId)).toMatchObject({ status: "resting" });
    expect(await recordedSends([o.orderId])).toEqual([]);
  });

  describe("an admin reviews the refused records and releases one once the cause is fixed (trading-engine's live routes)", () => {
    const ADMIN = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };
    const TRADER = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const appOf = (engine: TradingEngine, mode: "paper" | "live" = "live") => {
      const app = createApp({ log: createLogger("live-refusals-test", "silent"), bodyLimit: 1 << 20, trustProxy: undefined, jsonMaxDepth: 64, receiveTimeoutMs: 10_000 });
      registerRoutes(app, engine, mode);
      return app;
    };
    /** An order a crashed batch sent (resting at Binance), whose lookup by the restarted engine's poll Binance refused for good. */
    async function refusedLookup() {
      const s = symbolOf();
      fake.setPrice(s, "100");
      const o = limitBuy(s, "95", "1");
      await crashedAfterSending([o]);
      const engine = engineOn();
      await engine.load();
      fake.failNext("GET", "/api/v3/order", { status: 400, code: -2015, msg: "Invalid API-key, IP, or permissions for action." });
      await engine.pollLive();
      expect(await refusalOf(o.orderId)).toMatchObject({ refused: true });
      return { o, engine, gets: () => fake.requests(o.orderId).filter((l) => l.startsWith("GET")).length };
    }

    it("listed with the order and Binance's message; released, the same process's next poll asks again and adopts the order; a second release is a 404", async () => {
      const { o, engine, gets } = await refusedLookup();
      const app = appOf(engine);
      const listed = await app.inject({ url: "/live/refusals?limit=500", headers: ADMIN });
      expect(listed.statusCode).toBe(200);
      expect(listed.json().total).toBeGreaterThanOrEqual(1);
      expect(listed.json().records).toContainEqual({
        orderId: o.orderId, userId: o.userId, symbol: o.symbol, side: "buy", cancelFailed: false,
        sentAt: expect.any(String), refusedAt: expect.any(String), refusal: expect.stringContaining("(code -2015): Invalid API-key, IP, or permissions for action."),
      });
      expect(listed.json().unwritten).toEqual([]);
      await engine.pollLive();
      expect(gets()).toBe(1); // refused: not asked while it waits for a person

      // Any case of the id names the same record (PostgreSQL's uuid); the answer spells it in lower case.
      const released = await app.inject({ method: "POST", url: `/live/refusals/${o.orderId.toUpperCase()}/release`, headers: ADMIN });
      expect(released.statusCode).toBe(200);
      expect(released.json()).toEqual({ orderId: o.orderId, released: true });
      expect(await refusalOf(o.orderId)).toEqual({ refused: false, refusal: null });
      await engine.pollLive(); // no restart, no failed batch: the release alone has the poll ask
      expect(gets()).toBe(2);
      expect(await rowOf(o.orderId)).toMatchObject({ status: "resting" });
      expect(await recordedSends([o.orderId])).toEqual([]);
      const again = await app.inject({ method: "POST", url: `/live/refusals/${o.orderId}/release`, headers: ADMIN });
      expect(again.statusCode).toBe(404);
      expect(again.json().error.code).toBe("NOT_FOUND");
      expect((await app.inject({ url: "/live/refusals?limit=500", headers: ADMIN })).json().records.map((r: { orderId: string }) => r.orderId)).not.toContain(o.orderId);
      await app.close();
    });

    it("a refusal PostgreSQL could not record (kept by the process alone) is listed as unwritten and released the same way", async () => {
      const s = symbolOf();
      fake.setPrice(s, "100");
      const o = limitBuy(s, "95", "1");
      await crashedAfterSending([o]);
      let refuseMark = true;
      const marking: PostgresClient = {
        ...client,
        query: ((text: string, values?: unknown[]) =>
          refuseMark && text.includes("SET refused_at = now()") ? Promise.reject(new Error("connection lost")) : client.query(text, values)) as PostgresClient["query"],
      };
      const engine = engineOn({ pg: marking });
      await engine.load();
      fake.failNext("GET", "/api/v3/order", { status: 400, code: -2015, msg: "Invalid API-key, IP, or permissions for action." });
      await engine.pollLive();
      expect(await refusalOf(o.orderId)).toEqual({ refused: false, refusal: null });
      const gets = () => fake.requests(o.orderId).filter((l) => l.startsWith("GET")).length;
      await engine.pollLive();
      expect(gets()).toBe(1);
      refuseMark = false;
      const app = appOf(engine);
      expect((await app.inject({ url: "/live/refusals", headers: ADMIN })).json().unwritten).toEqual([o.orderId]);
      expect((await app.inject({ method: "POST", url: `/live/refusals/${o.orderId}/release`, headers: ADMIN })).statusCode).toBe(200);
      await engine.pollLive();
      expect(gets()).toBe(2);
      expect(await rowOf(o.orderId)).toMatchObject({ status: "resting" });
      await app.close();
    });

    it("admins only; a bad id or limit is a 400 naming the field; a record with no refusal is a 404; paper mode has no such routes", async () => {
      const { o, engine } = await refusedLookup();
      const app = appOf(engine);
      expect((await app.inject({ url: "/live/refusals" })).statusCode).toBe(401);
      expect((await app.inject({ url: "/live/refusals", headers: TRADER })).statusCode).toBe(403);
      expect((await app.inject({ method: "POST", url: `/live/refusals/${o.orderId}/release`, headers: TRADER })).statusCode).toBe(403);
      for (const limit of ["0", "501", "1.5", "x", "%00"]) {
        const r = await app.inject({ url: `/live/refusals?limit=${limit}`, headers: ADMIN });
        expect([r.statusCode, r.json().error.field]).toEqual([400, "limit"]);
      }
      for (const id of ["not-a-uuid", "urn:uuid:" + o.orderId, `${o.orderId}0`, "%00"]) {
        const r = await app.inject({ method: "POST", url: `/live/refusals/${encodeURIComponent(id)}/release`, headers: ADMIN });
        expect([r.statusCode, r.json().error.field]).toEqual([400, "orderId"]);
      }
      expect((await app.inject({ method: "POST", url: `/live/refusals/${randomUUID()}/release`, headers: ADMIN })).statusCode).toBe(404);
      expect(await refusalOf(o.orderId)).toMatchObject({ refused: true }); // nothing above released it
      await app.close();
      const paper = appOf(engine, "paper");
      expect((await paper.inject({ url: "/live/refusals", headers: ADMIN })).statusCode).toBe(404);
      await paper.close();
    });
  });

  it("a refused record changed by a new placement is asked about again, and one changed since the poll read it is not marked", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const o = marketBuy(s, "1");
    await crashedAfterSending([o]);
    const left = (await leftSentOrders(client, [o.orderId]))[0];
    expect(left).toMatchObject({ order: { orderId: o.orderId }, cancelFailed: false, lastSentAt: expect.any(Number) });
    await markRefused(client, { ...left, lastSentAt: left.lastSentAt! - 1 }, "changed since"); // read before a later placement
    expect(await refusalOf(o.orderId)).toEqual({ refused: false, refusal: null });
    await markRefused(client, left, "refused");
    expect(await refusalOf(o.orderId)).toEqual({ refused: true, refusal: "refused" });
    expect(await leftSentOrders(client, [o.orderId])).toEqual([]);
    await recordPlacement(client, o, Date.now());
    expect(await refusalOf(o.orderId)).toEqual({ refused: false, refusal: null });
    expect(await leftSentOrders(client, [o.orderId])).toHaveLength(1);
  });

  it("Binance unreachable when the restarted engine looks: an outage, retried; never sent blind, never rejected", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const o = marketBuy(s, "2");
    await crashedAfterSending([o]);
    const engine = engineOn();
    await engine.load();
    fake.failNext("GET", "/api/v3/order", "503-before", 3); // every lookup of the first attempt
    await expect(engine.onBatch([execute(o)])).rejects.toSatisfy(isRetriable);
    expect(fake.requests(o.orderId).filter((l) => l.startsWith("POST"))).toHaveLength(1);
    expect(await rowOf(o.orderId)).toBeUndefined();
    expect(await eventsOf(o.orderId)).toEqual([]); // no order.rejected
    expect(await recordedSends([o.orderId])).toEqual([o.orderId]);

    await engine.onBatch([execute(o)]); // the consumer's retry
    expect(atBinance(o)).toHaveLength(1);
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(await fillsOf(o.orderId)).toHaveLength(1);
    expect(await recordedSends([o.orderId])).toEqual([]);
  });

  it("killed between Binance's CANCELED and the cancel batch's COMMIT: the first poll after the restart reports it cancelled (the fills before it first), not expired", async () => {
    const { engine: before, o } = await restingBuy();
    fake.fill(o.orderId, "0.5");
    const crashed = engineOn({ pg: killedBeforeCommit() });
    await crashed.load();
    await expect(crashed.onBatch([cancel(o)])).rejects.toThrow();
    expect(fake.order(o.orderId)).toMatchObject({ status: "CANCELED", executedQty: "0.5" });
    expect(await rowOf(o.orderId)).toMatchObject({ status: "resting", remaining: "2" }); // nothing of the batch committed

    const engine = engineOn(); // the restarted process: no memory of the cancel it sent
    await engine.load();
    await engine.pollLive();
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled", remaining: "1.5", fill_seq: 1 });
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.remaining, e.reason])).toEqual([["fill", null, null], ["order.cancelled", "1.5", "CANCELLED_ON_REQUEST"]]);
    await engine.onBatch([cancel(o)]); // the consumer's redelivery of the cancel: finished, nothing more
    expect(await eventsOf(o.orderId)).toHaveLength(2);
    await before.stopLivePolling();
  });

  const setOwner = (owner: string, state: "halted" | "active") =>
    client.query("INSERT INTO trading_states (scope, state) VALUES ($1, $2) ON CONFLICT (scope) DO UPDATE SET state = $2", [`user:${owner}`, state]);

  /** A limit buy to 95 a killed engine sent to Binance and never recorded, its owner then halted; a fresh engine loaded over it. */
  async function sentKilledThenHalted(quantity: string) {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const owner = randomUUID();
    const o = limitBuy(s, "95", quantity, owner);
    await crashedAfterSending([o]);
    await setOwner(owner, "halted");
    const engine = engineOn();
    await engine.load();
    return { o, engine };
  }

  it("executed and cancelled in one batch, the cancel's answer lost: the retry adopts it from Binance as cancelled (order.cancelled), not expired; placed once", async () => {
    const { s, engine } = await startedEngine();
    const o = limitBuy(s, "95");
    fake.failNext("DELETE", "/api/v3/order", "503-after"); // Binance cancels it, the answer is lost
    await expect(engine.onBatch([execute(o), cancel(o)])).rejects.toSatisfy(isRetriable);
    expect(atBinance(o)).toMatchObject([{ status: "CANCELED" }]);
    expect(await rowOf(o.orderId)).toBeUndefined(); // nothing of the batch committed

    await engine.onBatch([execute(o), cancel(o)]); // the consumer's retry
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `DELETE /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled", remaining: "2" });
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.remaining, e.reason])).toEqual([["order.cancelled", "2", "CANCELLED_ON_REQUEST"]]);
    expect(await recordedSends([o.orderId])).toEqual([]);
  });

  it("executed and cancelled in one batch, killed after Binance's CANCELED: the restarted engine, handed the execute alone, records it cancelled, not expired; the cancel then adds nothing", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const o = limitBuy(s, "95", "2");
    const crashed = engineOn({ pg: killedBeforeCommit() });
    await crashed.load();
    await expect(crashed.onBatch([execute(o), cancel(o)])).rejects.toThrow(); // killed before its COMMIT
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `DELETE /api/v3/order ${o.orderId}`]);
    expect(atBinance(o)).toMatchObject([{ status: "CANCELED" }]);
    expect(await rowOf(o.orderId)).toBeUndefined();

    const engine = engineOn(); // restarted; Kafka redelivers the execute in a batch of its own
    await engine.load();
    await engine.pollLive(); // nothing of it in te_orders: nothing to poll
    await engine.onBatch([execute(o)]);
    expect(fake.requests(o.orderId).filter((l) => l.startsWith("POST"))).toHaveLength(1);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled", remaining: "2" });
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.cancelled", "CANCELLED_ON_REQUEST"]]);
    await engine.onBatch([cancel(o)]);
    expect(await eventsOf(o.orderId)).toHaveLength(1);
  });

  it("executed and cancelled in one batch, the cancel unanswered and not yet applied, the execute retried alone: adopted resting with the cancel's mark, so Binance's later CANCELED is polled as cancelled", async () => {
    const { s, engine } = await startedEngine();
    const o = limitBuy(s, "95");
    fake.failNext("DELETE", "/api/v3/order", "timeout-before");
    await expect(engine.onBatch([execute(o), cancel(o)])).rejects.toSatisfy(isRetriable);
    expect(atBinance(o)).toMatchObject([{ status: "NEW" }]);

    await engine.onBatch([execute(o)]); // the redelivery, batched otherwise: the execute alone
    expect(await rowOf(o.orderId)).toMatchObject({ status: "resting", remaining: "2" });
    const marked = await client.query<{ marked: boolean }>("SELECT cancel_sent_at IS NOT NULL AS marked FROM te_orders WHERE order_id = $1", [o.orderId]);
    expect(marked.rows[0].marked).toBe(true);
    expect(await recordedSends([o.orderId])).toEqual([]);

    fake.endOrder(o.orderId, "CANCELED"); // the unanswered DELETE reaches Binance late
    await engine.pollLive();
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled", remaining: "2" });
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.cancelled", "CANCELLED_ON_REQUEST"]]);
  });

  it("sent, killed, then its owner halted: the redelivery finds it at Binance and records it resting, not held: polled, its fills recorded; the sweep's cancel reaches Binance", async () => {
    const { o, engine } = await sentKilledThenHalted("2");
    await engine.onBatch([execute(o)]); // redelivered while halted: looked up, not sent again
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "resting", remaining: "2" });
    expect([...engine.heldOf()].map((h) => h.orderId)).not.toContain(o.orderId);
    expect(await recordedSends([o.orderId])).toEqual([]);

    fake.fill(o.orderId, "0.5"); // Binance fills it while its owner is halted
    await engine.pollLive();
    expect((await fillsOf(o.orderId)).map((f) => f.quantity)).toEqual(["0.5"]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "resting", remaining: "1.5", fill_seq: 1 });

    await engine.onBatch([cancel(o)]); // the kill switch's sweep
    expect(atBinance(o)).toMatchObject([{ status: "CANCELED" }]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled", remaining: "1.5" });
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.remaining])).toEqual([["fill", null], ["order.cancelled", "1.5"]]);
  });

  it("sent, killed, then its owner halted, its cancel's answer lost: the poll before the retry reports it cancelled; the retry adds nothing", async () => {
    const { o, engine } = await sentKilledThenHalted("1");
    await engine.onBatch([execute(o)]);

    fake.failNext("DELETE", "/api/v3/order", "503-after");
    await expect(engine.onBatch([cancel(o)])).rejects.toSatisfy(isRetriable);
    expect(atBinance(o)).toMatchObject([{ status: "CANCELED" }]);
    await engine.pollLive();
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled", remaining: "1" });
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.cancelled", "CANCELLED_ON_REQUEST"]]);
    await engine.onBatch([cancel(o)]); // the consumer's retry
    expect(await eventsOf(o.orderId)).toHaveLength(1);
    expect(await recordedSends([o.orderId])).toEqual([]);
  });

  it("sent, killed, then its owner halted, redelivered with its cancel in one batch whose cancel's answer is lost: the retry finds it CANCELED at Binance and records it cancelled, not expired", async () => {
    const { o, engine } = await sentKilledThenHalted("1");
    fake.failNext("DELETE", "/api/v3/order", "503-after");
    await expect(engine.onBatch([execute(o), cancel(o)])).rejects.toSatisfy(isRetriable);
    expect(atBinance(o)).toMatchObject([{ status: "CANCELED" }]);
    expect(await rowOf(o.orderId)).toBeUndefined();

    await engine.onBatch([execute(o), cancel(o)]); // the consumer's retry
    expect(fake.requests(o.orderId).filter((l) => l.startsWith("POST"))).toHaveLength(1);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled", remaining: "1" });
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.cancelled", "CANCELLED_ON_REQUEST"]]);
    expect(await recordedSends([o.orderId])).toEqual([]);
  });

  it("a held order released and sent by a batch that then failed unanswered, its owner halted again before the retry: the retry finds it at Binance and records it resting, polled from then on", async () => {
    const { s, engine } = await startedEngine();
    const owner = randomUUID();
    await setOwner(owner, "halted");
    const h = limitBuy(s, "95", "1", owner);
    await engine.onBatch([execute(h)]);
    expect(await rowOf(h.orderId)).toMatchObject({ status: "held" });
    const other = limitBuy(s, "94", "1");
    await engine.onBatch([execute(other)]);

    await setOwner(owner, "active");
    fake.failNext("DELETE", "/api/v3/order", "timeout-before"); // the batch's cancel of another order gets no answer
    await expect(engine.onBatch([cancel(other)])).rejects.toSatisfy(isRetriable);
    expect(atBinance(h)).toMatchObject([{ status: "NEW" }]); // released and sent before the cancel
    expect(await rowOf(h.orderId)).toMatchObject({ status: "held" }); // rolled back
    await setOwner(owner, "halted");

    await engine.onBatch([cancel(other)]); // the retry: h may not be sent, but Binance has it
    expect(fake.requests(h.orderId)).toEqual([`POST /api/v3/order ${h.orderId}`, `GET /api/v3/order ${h.orderId}`]);
    expect(await rowOf(h.orderId)).toMatchObject({ status: "resting", remaining: "1" });
    expect([...engine.heldOf()].map((x) => x.orderId)).not.toContain(h.orderId);
    fake.fill(h.orderId, "1");
    await engine.pollLive();
    expect(await rowOf(h.orderId)).toMatchObject({ status: "filled", remaining: "0" });
    expect((await eventsOf(h.orderId)).map((e) => e.type)).toEqual(["fill"]);
  });

  /** The kit's client whose next transaction, once armed, loses its connection after its work and before COMMIT (an outage: rolled back, retried). */
  const failingBeforeCommit = () => {
    let armed = false;
    const pg: PostgresClient = {
      ...client,
      transaction: ((fn, opts) =>
        client.transaction(
          (...args) =>
            atCommit(fn, args, () => {
              if (!armed) return;
              armed = false;
              throw Object.assign(new Error("connection lost before COMMIT"), { code: "ECONNRESET" });
            }),
          opts,
        )) as PostgresClient["transaction"],
    };
    return { pg, arm: () => void (armed = true) };
  };
  /** An engine over a fresh symbol holding `h` (its owner halted), which a batch then released and sent before failing before its COMMIT; its owner halted again. */
  async function heldSentByFailedBatch() {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const owner = randomUUID();
    const failing = failingBeforeCommit();
    const engine = engineOn({ pg: failing.pg });
    await engine.load();
    await setOwner(owner, "halted");
    const h = limitBuy(s, "95", "1", owner);
    await engine.onBatch([execute(h)]);
    await setOwner(owner, "active");
    failing.arm();
    const lifted: EngineCommand = { kind: "bars", bars: [bar(s, Date.UTC(2026, 7, 1), "100")] };
    await expect(engine.onBatch([lifted])).rejects.toSatisfy(isRetriable);
    expect(atBinance(h)).toMatchObject([{ status: "NEW" }]); // released and sent before the failure
    expect(await rowOf(h.orderId)).toMatchObject({ status: "held" }); // rolled back
    expect(await recordedSends([h.orderId])).toEqual([h.orderId]);
    await setOwner(owner, "halted");
    return { s, engine, h, lifted };
  }

  it("a held order a batch released and sent before failing, its owner halted again, filled at Binance, no further message: the poll alone adopts it and records and publishes its fill; the retry adds nothing", async () => {
    const { s, engine, h, lifted } = await heldSentByFailedBatch();
    expect([...engine.restingOf()].filter((r) => r.order.symbol === s)).toEqual([]); // h is not polled as resting
    fake.fill(h.orderId, "1", "94.5");
    await engine.pollLive();
    expect(fake.requests(h.orderId)).toEqual([`POST /api/v3/order ${h.orderId}`, `GET /api/v3/order ${h.orderId}`]);
    expect(await rowOf(h.orderId)).toMatchObject({ status: "filled", remaining: "0", fill_seq: 1 });
    expect((await fillsOf(h.orderId)).map((f) => [f.price, f.quantity])).toEqual([["94.5", "1"]]);
    expect((await eventsOf(h.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect([...engine.heldOf()].map((x) => x.orderId)).not.toContain(h.orderId);
    expect(await recordedSends([h.orderId])).toEqual([]);

    await engine.pollLive(); // nothing left to look up: Binance is not asked again
    expect(fake.requests(h.orderId)).toHaveLength(2);
    await engine.onBatch([lifted]); // the consumer's retry of the failed batch
    await engine.onBatch([execute(h)]); // a replay of the order's own message
    expect(fake.requests(h.orderId)).toHaveLength(2);
    expect(await fillsOf(h.orderId)).toHaveLength(1);
    expect(await eventsOf(h.orderId)).toHaveLength(1);
    expect(await recordedSends([h.orderId])).toEqual([]);
  });

  it("such an order still resting at Binance: the poll adopts it resting (then polls it: its fills recorded), and the sweep's cancel reaches Binance", async () => {
    const { s, engine, h } = await heldSentByFailedBatch();
    await engine.pollLive();
    expect(await rowOf(h.orderId)).toMatchObject({ status: "resting", remaining: "1", fill_seq: 0 });
    expect([...engine.restingOf()].filter((r) => r.order.symbol === s).map((r) => r.order.orderId)).toEqual([h.orderId]);
    fake.fill(h.orderId, "0.25");
    await engine.pollLive();
    expect(await rowOf(h.orderId)).toMatchObject({ status: "resting", remaining: "0.75", fill_seq: 1 });
    await engine.onBatch([cancel(h)]);
    expect(atBinance(h)).toMatchObject([{ status: "CANCELED" }]);
    expect((await eventsOf(h.orderId)).map((e) => [e.type, e.remaining])).toEqual([["fill", null], ["order.cancelled", "0.75"]]);
  });

  it("such an order whose cancel (the sweep's) Binance applied but whose answer was lost: the poll before the retry records it cancelled (order.cancelled), not expired; the retry adds nothing", async () => {
    const { engine, h } = await heldSentByFailedBatch();
    fake.failNext("DELETE", "/api/v3/order", "503-after");
    await expect(engine.onBatch([cancel(h)])).rejects.toSatisfy(isRetriable);
    expect(atBinance(h)).toMatchObject([{ status: "CANCELED" }]);
    expect(await rowOf(h.orderId)).toMatchObject({ status: "held" }); // rolled back

    await engine.pollLive();
    expect(await rowOf(h.orderId)).toMatchObject({ status: "cancelled", remaining: "1" });
    expect((await eventsOf(h.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.cancelled", "CANCELLED_ON_REQUEST"]]);
    expect(await recordedSends([h.orderId])).toEqual([]);
    await engine.onBatch([cancel(h)]); // the consumer's retry
    expect((await eventsOf(h.orderId)).map((e) => e.type)).toEqual(["order.cancelled"]);
    expect(fake.requests(h.orderId).filter((l) => !l.startsWith("GET"))).toEqual([`POST /api/v3/order ${h.orderId}`, `DELETE /api/v3/order ${h.orderId}`]);
  });

  it("at start-up: an engine killed after releasing and sending a held order (its owner halted again) leaves it held; the restarted engine's first poll adopts it with its fills, no message needed", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const owner = randomUUID();
    const before = engineOn();
    await before.load();
    await setOwner(owner, "halted");
    const h = marketBuy(s, "1", { userId: owner });
    await before.onBatch([execute(h)]);
    await setOwner(owner, "active");
    const crashed = engineOn({ pg: killedBeforeCommit() });
    await crashed.load();
    await expect(crashed.onBatch([{ kind: "bars", bars: [bar(s, Date.UTC(2026, 7, 2), "100")] }])).rejects.toThrow();
    expect(atBinance(h)).toMatchObject([{ status: "FILLED" }]);
    await setOwner(owner, "halted");

    const engine = engineOn();
    await engine.load();
    expect([...engine.heldOf()].map((x) => x.orderId)).toContain(h.orderId);
    await engine.pollLive(); // what startLivePolling runs right after the start
    expect(await rowOf(h.orderId)).toMatchObject({ status: "filled", remaining: "0" });
    expect((await fillsOf(h.orderId)).map((f) => [f.price, f.quantity])).toEqual([["100", "1"]]);
    expect((await eventsOf(h.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect([...engine.heldOf()].map((x) => x.orderId)).not.toContain(h.orderId);
    expect(await recordedSends([h.orderId])).toEqual([]);
  });

  it("a held order whose record an attempt left but which Binance never had: the poll keeps it held, its record goes, and the next poll asks nothing; no answer leaves it for the next poll", async () => {
    const { s, engine } = await startedEngine();
    const owner = randomUUID();
    await setOwner(owner, "halted");
    const h = limitBuy(s, "95", "1", owner);
    await engine.onBatch([execute(h)]);
    await recordLiveSends(client, [h.orderId]); // a later attempt recorded it (about to release it) and never committed
    await engine.load(); // the rebuild after that failure

    fake.failNext("GET", "/api/v3/order", "503-before", 3);
    await engine.pollLive(); // no answer: nothing changes, tried again by the next poll
    expect(await rowOf(h.orderId)).toMatchObject({ status: "held" });
    expect(await recordedSends([h.orderId])).toEqual([h.orderId]);
    fake.clearFaults();

    await engine.pollLive();
    expect(await rowOf(h.orderId)).toMatchObject({ status: "held" });
    expect([...engine.heldOf()].map((x) => x.orderId)).toContain(h.orderId);
    expect(await recordedSends([h.orderId])).toEqual([]);
    const asked = fake.requests(h.orderId).length;
    await engine.pollLive();
    expect(fake.requests(h.orderId)).toHaveLength(asked);
    await engine.onBatch([cancel(h)]); // not at Binance: cancelled without it
    expect(fake.requests(h.orderId)).toHaveLength(asked);
    expect(await rowOf(h.orderId)).toMatchObject({ status: "cancelled" });
  });

  it("recorded, killed before the send, then its owner halted: Binance does not know it, so it is held, its record goes, and its cancel needs no Binance", async () => {
    const { s, engine } = await startedEngine();
    const owner = randomUUID();
    const o = limitBuy(s, "95", "1", owner);
    await recordLiveSends(client, [o.orderId]); // all the killed process did before dying
    await setOwner(owner, "halted");
    await engine.onBatch([execute(o)]);
    expect(fake.requests(o.orderId)).toEqual([`GET /api/v3/order ${o.orderId}`]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "held" });
    expect(await recordedSends([o.orderId])).toEqual([]);
    await engine.onBatch([cancel(o)]);
    expect(fake.requests(o.orderId)).toEqual([`GET /api/v3/order ${o.orderId}`]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled" });
  });

  it("a placement still on its way to Binance when the retry looks (-2013): nothing is sent until recvWindow has passed since it; the order that landed is then adopted, placed once", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const engine = engineOn({ recvWindow: RECV_WINDOW });
    await engine.load();
    const o = marketBuy(s, "1");
    fake.failNext("POST", "/api/v3/order", "in-flight"); // sent, held up on its way (no answer: the client times out)
    fake.failNext("GET", "/api/v3/order", "503-before", 3); // the attempt's lookups get no answer: an outage
    const before = Date.now();
    await expect(engine.onBatch([execute(o)])).rejects.toSatisfy(isRetriable);
    const sentAt = await lastSentAt(o.orderId);
    expect(sentAt).toBeGreaterThanOrEqual(before - 1); // the placement's own timestamp, recorded before it was signed
    expect(fake.order(o.orderId)).toBeUndefined();

    // The consumer's retry: Binance answers -2013, but the placement may still land; nothing sent.
    await expect(engine.onBatch([execute(o)])).rejects.toSatisfy(isRetriable);
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, ...Array(4).fill(`GET /api/v3/order ${o.orderId}`)]);
    expect(await rowOf(o.orderId)).toBeUndefined();
    expect(await eventsOf(o.orderId)).toEqual([]); // no order.rejected
    expect(await lastSentAt(o.orderId)).toBe(sentAt);

    expect(fake.landInFlight()).toMatchObject([{ status: 200, body: { status: "FILLED" } }]); // it lands within its recvWindow
    await windowPassed(sentAt!);
    await engine.onBatch([execute(o)]);
    expect(atBinance(o)).toHaveLength(1);
    expect(fake.requests(o.orderId).filter((l) => l.startsWith("POST"))).toHaveLength(1);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "filled", remaining: "0" });
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(await recordedSends([o.orderId])).toEqual([]);
  });

  it("a placement on its way that lands after its recvWindow: Binance refuses it (-1021); the retry after the window trusts -2013 and places the order once", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const engine = engineOn({ recvWindow: RECV_WINDOW });
    await engine.load();
    const o = marketBuy(s, "1");
    fake.failNext("POST", "/api/v3/order", "in-flight");
    fake.failNext("GET", "/api/v3/order", "503-before", 3);
    await expect(engine.onBatch([execute(o)])).rejects.toSatisfy(isRetriable);
    const sentAt = (await lastSentAt(o.orderId))!;
    await expect(engine.onBatch([execute(o)])).rejects.toSatisfy(isRetriable); // too soon to trust -2013
    await windowPassed(sentAt);
    await engine.onBatch([execute(o)]);
    expect(fake.requests(o.orderId).slice(-2)).toEqual([`GET /api/v3/order ${o.orderId}`, `POST /api/v3/order ${o.orderId}`]);
    expect(await lastSentAt(o.orderId)).toBeUndefined(); // committed: the record went
    expect(fake.landInFlight()).toMatchObject([{ status: 400, body: { code: -1021 } }]);
    expect(atBinance(o)).toHaveLength(1);
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]);
  });

  it("a held order whose release sent a placement still on its way, its owner halted again: the poll's -2013 keeps it (record and lookup) until recvWindow has passed; the order that landed is then adopted resting", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const engine = engineOn({ recvWindow: RECV_WINDOW });
    await engine.load();
    const owner = randomUUID();
    await setOwner(owner, "halted");
    const h = limitBuy(s, "95", "1", owner);
    await engine.onBatch([execute(h)]);
    expect(await lastSentAt(h.orderId)).toBeUndefined(); // held: nothing recorded once committed
    await setOwner(owner, "active");
    fake.failNext("POST", "/api/v3/order", "in-flight");
    fake.failNext("GET", "/api/v3/order", "503-before", 3);
    await expect(engine.onBatch([{ kind: "bars", bars: [bar(s, Date.UTC(2026, 7, 1), "100")] }])).rejects.toSatisfy(isRetriable); // released, sent, unanswered
    await setOwner(owner, "halted");
    const sentAt = await lastSentAt(h.orderId);

    await engine.pollLive(); // -2013: the placement may still land
    expect(fake.requests(h.orderId).at(-1)).toBe(`GET /api/v3/order ${h.orderId}`);
    expect(await recordedSends([h.orderId])).toEqual([h.orderId]);
    expect(await rowOf(h.orderId)).toMatchObject({ status: "held" });
    expect(sentAt).toEqual(expect.any(Number)); // the release's placement, recorded before it was signed

    expect(fake.landInFlight()).toMatchObject([{ status: 200, body: { status: "NEW" } }]);
    await windowPassed(sentAt!);
    await engine.pollLive(); // a later poll finds it at Binance
    expect(await rowOf(h.orderId)).toMatchObject({ status: "resting", remaining: "1" });
    expect([...engine.restingOf()].map((r) => r.order.orderId)).toContain(h.orderId);
    expect(await recordedSends([h.orderId])).toEqual([]);
    expect(atBinance(h)).toHaveLength(1);
    fake.fill(h.orderId, "1");
    await engine.pollLive();
    expect(await rowOf(h.orderId)).toMatchObject({ status: "filled", remaining: "0" });
  });

  it("a placement whose timestamp cannot be recorded, or is recorded after half of recvWindow, is not sent: an outage, never a rejection; the retry sends it once", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    let recording: "fail" | "slow" | "ok" = "fail";
    const isPlacementRecord = (text: string) => text.includes("sent_at = EXCLUDED.sent_at");
    const pg: PostgresClient = {
      ...client,
      query: (async (text: string, values?: unknown[]) => {
        if (isPlacementRecord(text) && recording === "fail") throw Object.assign(new Error("connection lost"), { code: "ECONNRESET" });
        if (isPlacementRecord(text) && recording === "slow") await new Promise((r) => setTimeout(r, RECV_WINDOW / 2 + 100));
        return client.query(text, values);
      }) as PostgresClient["query"],
    };
    const engine = engineOn({ pg, recvWindow: RECV_WINDOW });
    await engine.load();
    const o = marketBuy(s, "1");
    await expect(engine.onBatch([execute(o)])).rejects.toSatisfy(isRetriable);
    recording = "slow";
    await expect(engine.onBatch([execute(o)])).rejects.toSatisfy(isRetriable);
    expect(fake.requests(o.orderId).filter((l) => l.startsWith("POST"))).toEqual([]);
    expect(await eventsOf(o.orderId)).toEqual([]); // no order.rejected
    recording = "ok";
    await windowPassed((await lastSentAt(o.orderId))!); // the slow record committed a timestamp (never sent with it)
    await engine.onBatch([execute(o)]);
    expect(atBinance(o)).toHaveLength(1);
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]);
  });

  it("the normal path: one autocommit statement for the batch's records and one per placement, Binance not asked first, no record left", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    let autocommit = 0;
    const counting: PostgresClient = { ...client, query: ((text: string, values?: unknown[]) => (autocommit++, client.query(text, values))) as PostgresClient["query"] };
    const engine = engineOn({ pg: counting });
    await engine.load();
    const orders = [marketBuy(s, "1"), limitBuy(s, "90", "1"), limitBuy(s, "101", "1")];
    autocommit = 0;
    await engine.onBatch(orders.map(execute));
    expect(autocommit).toBe(1 + orders.length); // the batch's records, then each placement's timestamp before it is signed
    for (const o of orders) expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`]);
    expect(await recordedSends(orders.map((o) => o.orderId))).toEqual([]);
    autocommit = 0;
    await engine.onBatch([cancel(orders[1])]); // a live cancel: one autocommit statement marks it sent (te_orders.cancel_sent_at)
    expect(autocommit).toBe(1);
    expect(await rowOf(orders[1].orderId)).toMatchObject({ status: "cancelled" });
  });
});

describe("a batch that fails for good after its sends (the consumer may set its messages aside)", () => {
  const recordedSends = async (ids: string[]) => (await client.query<{ id: string }>("SELECT order_id::text AS id FROM te_live_sends WHERE order_id = ANY($1::uuid[])", [ids])).rows.map((r) => r.id);
  /**
   * The kit's client whose n-th transaction (from 1) goes as `plan(n)` says: `bug` fails after its
   * work with an error that is no outage (a bug after the sends), `lost` fails before it as a lost
   * connection does (an outage), `commit` commits.
   */
  const scriptedTransactions = (plan: (n: number) => "bug" | "lost" | "commit"): PostgresClient => {
    let n = 0;
    return {
      ...client,
      transaction: ((fn, opts) => {
        const step = plan(++n);
        if (step === "lost") return Promise.reject(Object.assign(new Error("connection lost"), { code: "ECONNRESET" }));
        return client.transaction(
          (...args) =>
            atCommit(fn, args, () => {
              if (step === "bug") throw new Error("a bug after the sends");
            }),
          opts,
        );
      }) as PostgresClient["transaction"],
    };
  };
  /** The first transaction fails after its work (a bug after the sends); the later ones commit. */
  const failingOnce = () => scriptedTransactions((n) => (n === 1 ? "bug" : "commit"));

  it("the orders Binance answered for are recorded with Binance's state before the failure is handed on; the retry of each message skips them", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    const owner = randomUUID();
    const [filled, resting, released] = [marketBuy(s, "0.5"), limitBuy(s, "95", "1"), marketBuy(s, "1", { userId: owner })];
    const setOwner = (state: string) => client.query("INSERT INTO trading_states (scope, state) VALUES ($1, $2) ON CONFLICT (scope) DO UPDATE SET state = $2", [`user:${owner}`, state]);
    await setOwner("halted");
    const before = engineOn();
    await before.load();
    await before.onBatch([execute(released)]);
    expect(await rowOf(released.orderId)).toMatchObject({ status: "held" });
    await setOwner("active");

    const engine = engineOn({ pg: failingOnce() });
    await engine.load();
    // The halt lifted, the failing batch also sends the held order.
    const err = await engine.onBatch([execute(filled), execute(resting)]).catch((e: unknown) => e);
    expect(String(err)).toContain("a bug after the sends");
    expect(isRetriable(err)).toBe(false); // the consumer hands the messages over one at a time, and may set them aside
    expect(atBinance(filled)).toMatchObject([{ status: "FILLED" }]);
    const [tradeId] = tradeIds(filled.orderId);
    expect(await fillsOf(filled.orderId)).toEqual([expect.objectContaining({ fillId: `${filled.orderId}:bn${tradeId}`, quantity: "0.5", liquidity: "taker" })]);
    expect(await rowOf(filled.orderId)).toMatchObject({ status: "filled", remaining: "0", fill_seq: 1 });
    expect((await eventsOf(filled.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(await rowOf(resting.orderId)).toMatchObject({ status: "resting", remaining: "1" });
    expect([...engine.restingOf()].map((r) => r.order.orderId)).toContain(resting.orderId); // polled from now on
    expect(fake.requests(released.orderId)).toEqual([`POST /api/v3/order ${released.orderId}`]);
    expect(await rowOf(released.orderId)).toMatchObject({ status: "filled", remaining: "0" }); // its held row replaced
    expect((await eventsOf(released.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect([...engine.heldOf()]).toEqual([]);
    expect(await recordedSends([filled.orderId, resting.orderId, released.orderId])).toEqual([]);

    await engine.onBatch([execute(filled)]); // the consumer's retry of each message: already recorded
    await engine.onBatch([execute(resting)]);
    for (const o of [filled, resting, released]) expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`]);
    expect(await fillsOf(filled.orderId)).toHaveLength(1);
  });

  it("a cancel Binance confirmed in the failed attempt is recorded `cancelled` (its fills first) before the failure is handed on: the message set aside, no poll turns it into `expired`", async () => {
    const { engine: before, o } = await restingBuy();
    await before.stopLivePolling();
    fake.fill(o.orderId, "0.5");
    const engine = engineOn({ pg: failingOnce() });
    await engine.load();
    const err = await engine.onBatch([cancel(o)]).catch((e: unknown) => e);
    expect(String(err)).toContain("a bug after the sends");
    expect(isRetriable(err)).toBe(false); // retried alone, it may be set aside: only the settle records the cancel
    expect(fake.order(o.orderId)).toMatchObject({ status: "CANCELED", executedQty: "0.5" });
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled", remaining: "1.5", fill_seq: 1 });
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.remaining, e.reason])).toEqual([["fill", null, null], ["order.cancelled", "1.5", "CANCELLED_ON_REQUEST"]]);
    expect([...engine.restingOf()].map((r) => r.order.orderId)).not.toContain(o.orderId);

    // The message is set aside (never retried); the poll neither asks Binance about it nor reports it again.
    const asked = fake.requests(o.orderId).length;
    await engine.pollLive();
    expect(fake.requests(o.orderId)).toHaveLength(asked);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "cancelled" });
    expect(await eventsOf(o.orderId)).toHaveLength(2);
  });

  /** What te_live_sends says of an order: undefined when it holds no record. */
  const sendRecordOf = async (orderId: string) =>
    (await client.query<{ unrecorded: string | null; marked: boolean }>("SELECT unrecorded, unrecorded_at IS NOT NULL AS marked FROM te_live_sends WHERE order_id = $1", [orderId])).rows[0];

  it("an order whose own row PostgreSQL refuses: the others are recorded; it is cancelled at Binance, not left open there unseen, and never sent again", async () => {
    const registry = new promClient.Registry();
    const { s, engine } = await startedEngine("100", registry);
    const good = limitBuy(s, "95", "1");
    // Stands for any row of its own that cannot be written (jsonb refuses U+0000; the consumer's decoding refuses such an order first).
    const unstorable = { ...limitBuy(s, "94", "1"), clientOrderId: "bad\u0000id" };
    const err = await engine.onBatch([execute(good), execute(unstorable)]).catch((e: unknown) => e);
    expect(isRetriable(err)).toBe(false);
    expect(await rowOf(good.orderId)).toMatchObject({ status: "resting", remaining: "1" });
    expect(atBinance(good)).toMatchObject([{ status: "NEW" }]);
    expect(await rowOf(unstorable.orderId)).toBeUndefined();
    expect(fake.requests(unstorable.orderId)).toEqual([`POST /api/v3/order ${unstorable.orderId}`, `DELETE /api/v3/order ${unstorable.orderId}`]);
    expect(atBinance(unstorable)).toMatchObject([{ status: "CANCELED" }]);
    expect(errors.map((e) => e.o)).toContainEqual(expect.objectContaining({ orderId: unstorable.orderId, cancel: "cancelled" }));
    // Counted once, for the TeLiveOrderUnrecorded alert (the good order, recorded, is not).
    expect(await unrecorded(registry)).toEqual({ cancelled: 1, cancel_failed: 0, not_open: 0 });
    expect(await recordedSends([good.orderId, unstorable.orderId])).toEqual([unstorable.orderId]); // its trace stays (a replay must not place it again)...
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: "cancelled", marked: true }); // ...saying it ended at Binance
    // order-management and portfolio-manager hear of its end (no te_orders row needed): it is closed there, not open for ever.
    expect((await eventsOf(unstorable.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.expired", "LIVE_ORDER_UNRECORDED"]]);
    expect(errors.map((e) => e.o)).toContainEqual(expect.objectContaining({ orderId: unstorable.orderId, published: "order.expired LIVE_ORDER_UNRECORDED" }));

    // The consumer's retry of the failing message alone (and any later replay): refused without asking Binance, counted no more; then set aside.
    for (let i = 0; i < 2; i++) {
      const again = await engine.onBatch([execute(unstorable)]).catch((e: unknown) => e);
      expect(isRetriable(again)).toBe(false);
      expect(String(again)).toContain("ended there (cancelled)");
    }
    expect(fake.requests(unstorable.orderId)).toHaveLength(2);
    expect(atBinance(unstorable)).toHaveLength(1);
    expect(await unrecorded(registry)).toEqual({ cancelled: 1, cancel_failed: 0, not_open: 0 });
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: "cancelled", marked: true });
    expect(await eventsOf(unstorable.orderId)).toHaveLength(1);
  });

  it("its cancel unanswered: counted cancel_failed, its record says so; the retry alone looks it up and cancels it, the record then says cancelled, counted once", async () => {
    const registry = new promClient.Registry();
    const { s, engine } = await startedEngine("100", registry);
    const unstorable = { ...limitBuy(s, "94", "1"), clientOrderId: "bad\u0000id" };
    fake.failNext("DELETE", "/api/v3/order", "timeout-before");
    await expect(engine.onBatch([execute(unstorable)])).rejects.not.toSatisfy(isRetriable);
    expect(atBinance(unstorable)).toMatchObject([{ status: "NEW" }]); // may still be open: a person must look
    expect(await unrecorded(registry)).toEqual({ cancelled: 0, cancel_failed: 1, not_open: 0 });
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: "cancel_failed", marked: true });
    expect(await eventsOf(unstorable.orderId)).toEqual([]); // it may still be open (and fill) at Binance: not ended yet

    await expect(engine.onBatch([execute(unstorable)])).rejects.not.toSatisfy(isRetriable); // the consumer's retry alone
    expect(fake.requests(unstorable.orderId)).toEqual([
      `POST /api/v3/order ${unstorable.orderId}`, `DELETE /api/v3/order ${unstorable.orderId}`, `GET /api/v3/order ${unstorable.orderId}`, `DELETE /api/v3/order ${unstorable.orderId}`,
    ]);
    expect(atBinance(unstorable)).toMatchObject([{ status: "CANCELED" }]);
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: "cancelled", marked: true });
    expect(await unrecorded(registry)).toEqual({ cancelled: 0, cancel_failed: 1, not_open: 0 }); // one order, counted once
    expect((await eventsOf(unstorable.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.expired", "LIVE_ORDER_UNRECORDED"]]); // ended now
  });

  it("its cancel unanswered and no redelivery: the live poll tries the cancel again (no answer: later, backed off), ends it at Binance, publishes its end and marks it cancelled, once; a replay then asks Binance nothing", async () => {
    const registry = new promClient.Registry();
    const { s, engine } = await startedEngine("100", registry);
    const unstorable = { ...limitBuy(s, "94", "1"), clientOrderId: "bad\u0000id" };
    fake.failNext("DELETE", "/api/v3/order", "timeout-before");
    await expect(engine.onBatch([execute(unstorable)])).rejects.not.toSatisfy(isRetriable);
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: "cancel_failed", marked: true });
    const sent = [`POST /api/v3/order ${unstorable.orderId}`, `DELETE /api/v3/order ${unstorable.orderId}`];
    expect(fake.requests(unstorable.orderId)).toEqual(sent);

    fake.failNext("DELETE", "/api/v3/order", "503-before"); // the poll's first retry gets no answer either
    await engine.pollLive();
    expect(fake.requests(unstorable.orderId)).toEqual([...sent, `DELETE /api/v3/order ${unstorable.orderId}`]);
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: "cancel_failed", marked: true });
    expect(await eventsOf(unstorable.orderId)).toEqual([]);
    await engine.pollLive(); // backed off: not asked again yet
    expect(fake.requests(unstorable.orderId)).toHaveLength(3);

    await waitUntil("the poll's retry cancelled it at Binance", async () => (await engine.pollLive(), fake.order(unstorable.orderId)?.status === "CANCELED"), 10_000, 100);
    expect(fake.requests(unstorable.orderId)).toEqual([...sent, `DELETE /api/v3/order ${unstorable.orderId}`, `DELETE /api/v3/order ${unstorable.orderId}`]);
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: "cancelled", marked: true });
    expect((await eventsOf(unstorable.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.expired", "LIVE_ORDER_UNRECORDED"]]);
    expect(await unrecorded(registry)).toEqual({ cancelled: 0, cancel_failed: 1, not_open: 0 }); // one order, counted once, as a redelivery leaves it
    expect(errors.map((e) => e.o)).toContainEqual(expect.objectContaining({ orderId: unstorable.orderId, outcome: "cancelled", before: "cancel_failed", published: "order.expired LIVE_ORDER_UNRECORDED" }));

    await engine.pollLive(); // settled: not asked again
    const again = await engine.onBatch([execute(unstorable)]).catch((e: unknown) => e); // a replay: refused without Binance
    expect(String(again)).toContain("ended there (cancelled)");
    expect(fake.requests(unstorable.orderId)).toHaveLength(4);
    expect(await eventsOf(unstorable.orderId)).toHaveLength(1);
    expect(await unrecorded(registry)).toEqual({ cancelled: 0, cancel_failed: 1, not_open: 0 });
  });

  it("its cancel refused for good by Binance (a 4xx): the poll logs it for reconciliation and asks no more; a redelivery still tries", async () => {
    const clock = testClock();
    const { s, engine } = await startedEngine("100", undefined, clock.now);
    const unstorable = { ...limitBuy(s, "94", "1"), clientOrderId: "bad\u0000id" };
    fake.failNext("DELETE", "/api/v3/order", "timeout-before");
    await expect(engine.onBatch([execute(unstorable)])).rejects.not.toSatisfy(isRetriable);
    fake.failNext("DELETE", "/api/v3/order", { status: 400, code: -2015, msg: "Invalid API-key, IP, or permissions for action." });
    await engine.pollLive();
    expect(fake.requests(unstorable.orderId)).toHaveLength(3);
    expect(errors.map((e) => e.o)).toContainEqual(expect.objectContaining({ orderId: unstorable.orderId, cancelFailed: true }));
    clock.advance(BACKOFF_MS + 1); // past the first backoff: a refusal is not retried
    await engine.pollLive();
    expect(fake.requests(unstorable.orderId)).toHaveLength(3);
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: "cancel_failed", marked: true });
    const restarted = engineOn(); // the refusal is the record's (migration 0404): a restart does not ask again
    await restarted.load();
    await restarted.pollLive();
    expect(fake.requests(unstorable.orderId)).toHaveLength(3);
    expect((await refusalOf(unstorable.orderId)).refused).toBe(true);
    await expect(engine.onBatch([execute(unstorable)])).rejects.not.toSatisfy(isRetriable); // the consumer's retry alone
    expect(fake.order(unstorable.orderId)).toMatchObject({ status: "CANCELED" });
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: "cancelled", marked: true });
    expect((await refusalOf(unstorable.orderId)).refused).toBe(false); // the new mark cleared the refusal
  });

  it("filled at once: its fills are recorded without its te_orders row (te_fills, te_positions, `fill` events: order-management's fills end it); counted not_open", async () => {
    const registry = new promClient.Registry();
    const { s, engine } = await startedEngine("100", registry);
    const unstorable = { ...marketBuy(s, "0.5"), clientOrderId: "bad\u0000id" };
    await expect(engine.onBatch([execute(unstorable)])).rejects.not.toSatisfy(isRetriable);
    expect(atBinance(unstorable)).toMatchObject([{ status: "FILLED" }]);
    expect(await rowOf(unstorable.orderId)).toBeUndefined();
    const [tradeId] = tradeIds(unstorable.orderId);
    expect(await fillsOf(unstorable.orderId)).toEqual([expect.objectContaining({ fillId: `${unstorable.orderId}:bn${tradeId}`, quantity: "0.5", liquidity: "taker" })]);
    expect((await eventsOf(unstorable.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(await unrecorded(registry)).toEqual({ cancelled: 0, cancel_failed: 0, not_open: 1 });
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: "not_open", marked: true });
    // The end order-management gets for a cancelled one, `expire`, is taken from every open state the order may be in there.
    for (const open of OPEN_STATUSES) expect(nextStatus(open, "expire")).toBe("expired");
  });

  it("its fills not writable either: the end goes alone (order.expired) and the fills are named in the error log for reconciliation", async () => {
    const registry = new promClient.Registry();
    const s = symbolOf();
    fake.setPrice(s, "100");
    // Every write of te_fills fails (not an outage): the batch, its settle, and the fills of the end;
    // te_final_writes (sent with a batch's COMMIT) writes te_fills too.
    const refused = (text: string) => /INSERT INTO te_fills|EXECUTE te_final_writes/.test(text);
    const pg: PostgresClient = {
      ...client,
      transaction: ((fn, opts) =>
        client.transaction(
          (tx, begun, each, commitWith) =>
            fn(
              new Proxy(tx, { get: (t, k) => (k === "query" ? (text: string, values?: unknown[]) => (refused(text) ? Promise.reject(new Error("te_fills refuses it")) : t.query(text, values)) : Reflect.get(t, k)) }),
              begun, each, (last: string) => (refused(last) ? Promise.reject(new Error("te_fills refuses it")) : commitWith(last)),
            ),
          opts,
        )) as PostgresClient["transaction"],
    };
    const engine = engineOn({ pg, registry });
    await engine.load();
    const o = marketBuy(s, "0.5");
    await expect(engine.onBatch([execute(o)])).rejects.not.toSatisfy(isRetriable);
    expect(atBinance(o)).toMatchObject([{ status: "FILLED" }]);
    expect(await fillsOf(o.orderId)).toEqual([]);
    expect((await eventsOf(o.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.expired", "LIVE_ORDER_UNRECORDED"]]);
    const [tradeId] = tradeIds(o.orderId);
    expect(errors.map((e) => e.o)).toContainEqual(
      expect.objectContaining({ orderId: o.orderId, outcome: "not_open", fillsError: "te_fills refuses it", fillsUnrecorded: [expect.objectContaining({ fillId: `${o.orderId}:bn${tradeId}`, quantity: "0.5" })] }),
    );
    expect(await unrecorded(registry)).toEqual({ cancelled: 0, cancel_failed: 0, not_open: 1 });
  });

  it("PostgreSQL unavailable for that recording: the failure becomes an outage (nothing set aside); the retry adopts the orders from Binance", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    // The batch fails after its sends (a bug); the recording of Binance's answers meets a lost connection.
    const pg = scriptedTransactions((n) => (n === 1 ? "bug" : n === 2 ? "lost" : "commit"));
    const registry = new promClient.Registry();
    const engine = engineOn({ pg, registry });
    await engine.load();
    const o = marketBuy(s, "1");
    const err = await engine.onBatch([execute(o)]).catch((e: unknown) => e);
    expect(isRetriable(err)).toBe(true);
    expect(String(err)).toContain("could not be recorded");
    expect(await rowOf(o.orderId)).toBeUndefined();
    expect(await recordedSends([o.orderId])).toEqual([o.orderId]);
    expect(await unrecorded(registry)).toEqual({ cancelled: 0, cancel_failed: 0, not_open: 0 }); // an outage: nothing lost, nothing counted

    await engine.onBatch([execute(o)]); // kafkajs retries the batch: looked up, adopted with its fill
    expect(fake.requests(o.orderId)).toEqual([`POST /api/v3/order ${o.orderId}`, `GET /api/v3/order ${o.orderId}`]);
    expect(await rowOf(o.orderId)).toMatchObject({ status: "filled" });
    expect((await eventsOf(o.orderId)).map((e) => e.type)).toEqual(["fill"]);
  });

  it("PostgreSQL unavailable for the end's publication: an outage, nothing marked nor counted; the retry looks the order up at Binance and publishes its end", async () => {
    const s = symbolOf();
    fake.setPrice(s, "100");
    // The third transaction, the end's publication, meets a lost connection.
    const pg = scriptedTransactions((n) => (n === 3 ? "lost" : "commit"));
    const registry = new promClient.Registry();
    const engine = engineOn({ pg, registry });
    await engine.load();
    const unstorable = { ...limitBuy(s, "94", "1"), clientOrderId: "bad\u0000id" };
    // 1: the batch, 2: the settle (both refuse the row), 3: the end's publication (PostgreSQL gone).
    const err = await engine.onBatch([execute(unstorable)]).catch((e: unknown) => e);
    expect(isRetriable(err)).toBe(true);
    expect(atBinance(unstorable)).toMatchObject([{ status: "CANCELED" }]);
    expect(await eventsOf(unstorable.orderId)).toEqual([]);
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: null, marked: false });
    expect(await unrecorded(registry)).toEqual({ cancelled: 0, cancel_failed: 0, not_open: 0 });

    await expect(engine.onBatch([execute(unstorable)])).rejects.not.toSatisfy(isRetriable); // kafkajs retries the batch
    expect(fake.requests(unstorable.orderId).filter((l) => l.startsWith("POST"))).toHaveLength(1);
    expect((await eventsOf(unstorable.orderId)).map((e) => [e.type, e.reason])).toEqual([["order.expired", "LIVE_ORDER_UNRECORDED"]]);
    expect(await sendRecordOf(unstorable.orderId)).toEqual({ unrecorded: "not_open", marked: true });
    expect(await unrecorded(registry)).toEqual({ cancelled: 0, cancel_failed: 0, not_open: 1 });
  });

  const atBinance = (o: OrderRequest) => fake.orders.filter((b) => b.clientOrderId === o.orderId);
});

describe("live: the kill switch sends nothing of a halted owner, nor an order reduce_only forbids", () => {
  const setUserState = (userId: string, state: "halted" | "reduce_only" | "active") =>
    client.query("INSERT INTO trading_states (scope, state) VALUES ($1, $2) ON CONFLICT (scope) DO UPDATE SET state = $2", [`user:${userId}`, state]);

  it("an order arriving while its owner is halted is held, not sent; its cancel is confirmed without Binance; lifted, the next batch sends a held one", async () => {
    const { s, engine } = await startedEngine();
    const owner = randomUUID();
    await setUserState(owner, "halted");
    const [cancelled, released] = [marketBuy(s, "1", { userId: owner }), marketBuy(s, "1", { userId: owner })];
    await engine.onBatch([execute(cancelled), execute(released)]);
    for (const o of [cancelled, released]) {
      expect(fake.requests(o.orderId)).toEqual([]);
      expect(await rowOf(o.orderId)).toMatchObject({ status: "held", remaining: "1", fill_seq: 0 });
    }
    expect([...engine.restingOf()].filter((r) => r.order.symbol === s)).toEqual([]); // not at Binance: nothing to poll
    expect([...engine.heldOf()].map((o) => o.orderId)).toEqual([cancelled.orderId, released.orderId]);

    await engine.onBatch([cancel(cancelled)]);
    expect(fake.requests(cancelled.orderId)).toEqual([]);
    expect(await rowOf(cancelled.orderId)).toMatchObject({ status: "cancelled", remaining: "1" });
    expect((await eventsOf(cancelled.orderId)).map((e) => [e.type, e.remaining])).toEqual([["order.cancelled", "1"]]);

    await setUserState(owner, "active");
    await engine.onBatch([{ kind: "bars", bars: [bar(s, Date.UTC(2026, 6, 1), "100")] }]);
    expect(fake.requests(released.orderId)).toEqual([`POST /api/v3/order ${released.orderId}`]);
    expect(await rowOf(released.orderId)).toMatchObject({ status: "filled", remaining: "0" });
    expect((await eventsOf(released.orderId)).map((e) => e.type)).toEqual(["fill"]);
    expect(fake.requests(cancelled.orderId)).toEqual([]);
  });

  it("under reduce_only an order that would grow the position is held, not sent; one that shrinks it is sent; lifted, the held one is sent", async () => {
    const { s, engine } = await startedEngine();
    const owner = randomUUID();
    const opening = marketBuy(s, "2", { userId: owner });
    await engine.onBatch([execute(opening)]);
    expect(await rowOf(opening.orderId)).toMatchObject({ status: "filled" });
    await setUserState(owner, "reduce_only");
    const [growing, shrinking] = [marketBuy(s, "1", { userId: owner }), marketBuy(s, "1", { userId: owner, side: "sell" })];
    await engine.onBatch([execute(growing), execute(shrinking)]);
    expect(fake.requests(growing.orderId)).toEqual([]);
    expect(await rowOf(growing.orderId)).toMatchObject({ status: "held", remaining: "1", fill_seq: 0 });
    expect(fake.requests(shrinking.orderId)).toEqual([`POST /api/v3/order ${shrinking.orderId}`]);
    expect(await rowOf(shrinking.orderId)).toMatchObject({ status: "filled", remaining: "0" });

    await setUserState(owner, "active");
    await engine.onBatch([{ kind: "bars", bars: [bar(s, Date.UTC(2026, 6, 2), "100")] }]);
    expect(fake.requests(growing.orderId)).toEqual([`POST /api/v3/order ${growing.orderId}`]);
    expect(await rowOf(growing.orderId)).toMatchObject({ status: "filled", remaining: "0" });
  });

  it("under reduce_only an order is weighed as if the owner's orders resting at Binance on its side filled: sells that would rest there together past flat are not all sent, in one batch or the next", async () => {
    const { s, engine } = await startedEngine();
    const owner = randomUUID();
    await engine.onBatch([execute(marketBuy(s, "2", { userId: owner }))]);
    await setUserState(owner, "reduce_only");
    // Limit sells above the price: they rest at Binance, which fills them later without the engine weighing them again.
    const sellAt105 = (quantity: string): OrderRequest => ({ ...limitBuy(s, "105", quantity, owner), side: "sell" });
    const [first, second, third, fourth] = [sellAt105("1"), sellAt105("2"), sellAt105("1"), sellAt105("1")];
    await engine.onBatch([execute(first), execute(second)]);
    expect(fake.requests(first.orderId)).toEqual([`POST /api/v3/order ${first.orderId}`]);
    expect(await rowOf(first.orderId)).toMatchObject({ status: "resting", remaining: "1" });
    expect(fake.requests(second.orderId)).toEqual([]); // 2 - 1 resting - 2 would be short 1
    expect(await rowOf(second.orderId)).toMatchObject({ status: "held" });

    await engine.onBatch([execute(third)]); // 2 - 1 resting - 1: flat at most
    expect(fake.requests(third.orderId)).toEqual([`POST /api/v3/order ${third.orderId}`]);
    await engine.onBatch([execute(fourth)]); // 2 - 2 resting - 1: through zero
    expect(fake.requests(fourth.orderId)).toEqual([]);
    expect(await rowOf(fourth.orderId)).toMatchObject({ status: "held" });
  });
});

describe("te_positions after every path above (placed, adopted after a crash or an unknown outcome, polled, cancelled, settled after a failure for good, redelivered)", () => {
  it("equals the signed sum of te_fills for every user and symbol: each fill moved it once", async () => {
    const { rows } = await client.query<{ user_id: string; symbol: string; fills: string | null; position: string | null }>(
      `WITH f AS (SELECT payload->>'userId' AS user_id, payload->>'symbol' AS symbol,
                         sum(CASE WHEN payload->>'side' = 'buy' THEN (payload->>'quantity')::numeric ELSE -(payload->>'quantity')::numeric END) AS q
                    FROM te_fills GROUP BY 1, 2)
       SELECT coalesce(f.user_id, p.user_id) AS user_id, coalesce(f.symbol, p.symbol) AS symbol, f.q::text AS fills, p.quantity::text AS position
         FROM f FULL JOIN te_positions p ON p.user_id = f.user_id AND p.symbol = f.symbol
        WHERE f.q IS DISTINCT FROM p.quantity`,
    );
    expect(rows).toEqual([]);
    expect(Number((await client.query<{ n: string }>("SELECT count(*) AS n FROM te_positions")).rows[0].n)).toBeGreaterThan(5);
  });
});
