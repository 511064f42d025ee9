/**
 * Live paths against fakes on loopback (no Binance is reachable here): data-bridge with
 * MARKET_DATA_SOURCE=binance on a fake kline WebSocket, and trading-engine with TRADING_MODE=live on
 * the fake Binance REST API (tests/fakes/binance.ts): an order answered 503 after Binance created it
 * (unknown outcome -> reconciliation, fills from myTrades), a limit order resting at Binance whose
 * fill the engine's poll (TE_LIVE_POLL_MS) collects, a cancel that reaches Binance. The engine-level
 * cases (outages, restart, races) are in live-engine.test.ts.
 * A private Kafka keeps these topics apart from the other test files.
 */
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, pg, startKafka, type KafkaServer } from "../harness";
import { ws } from "../harness/deps";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { ensureKafkaTopics, runPostgresMigrations } from "../../services/src/migrations";
import dataBridge from "../../services/src/services/data-bridge";
import tradingEngine from "../../services/src/services/trading-engine";
import { BinanceTradingClient, toBinanceOrder } from "../../services/src/trading/binance/adapter";
import type { OrderRequest } from "../../services/src/trading/types";
import { FakeBinance } from "../fakes/binance";
import { waitUntil } from "./e2e-helpers";

const srv = useServers("postgres", "redis");
const SECRET = "live-test-secret";
let kafka: KafkaServer;
let env: Record<string, string>;
let pool: InstanceType<typeof pg.Pool>;
const services: Service<any>[] = [];
const closers: (() => void | Promise<void>)[] = [];
const binance = new FakeBinance("live-key", SECRET);
/** The live trading-engine the tests below share (one at a time: the engine is a singleton). */
let liveEngine: Service<any> | undefined;

beforeAll(async () => {
  kafka = await startKafka();
  await binance.start();
  closers.push(() => binance.close());
  // Fake kline stream: an in-progress update, then the closed kline, for every connection.
  const wss = new ws.WebSocketServer({ port: 0, host: "127.0.0.1" });
  await new Promise((r) => wss.once("listening", r));
  closers.push(() => wss.close());
  const t = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
  const k = (x: boolean, c: string) => JSON.stringify({ e: "kline", E: t + 1, s: "BTCUSDT", k: { t, T: t + 59_999, s: "BTCUSDT", i: "1m", o: "100", c, h: "102", l: "99", v: "5", x } });
  wss.on("connection", (sock) => {
    sock.send(k(false, "100.5"));
    setTimeout(() => sock.send(k(true, "101")), 50);
  });

  env = {
    ...srv.env,
    ...kafka.env,
    LOG_LEVEL: "error",
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    KAFKA_HEARTBEAT_MS: "500",
    MARKET_DATA_SOURCE: "binance",
    MARKET_SYMBOLS: "BTCUSDT",
    BINANCE_WS_URL: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    BINANCE_REST_URL: binance.url,
    TE_OUTBOX_INTERVAL_MS: "50",
  };
  pool = new pg.Pool({ connectionString: env.POSTGRES_URL, max: 2 });
  await runPostgresMigrations(pool);
  const admin = new kafkajs.Kafka({ brokers: [kafka.url], logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  await ensureKafkaTopics(admin);
  await admin.disconnect();
}, 180_000);

afterAll(async () => {
  for (const s of services.reverse()) await s.close().catch(() => undefined);
  for (const c of closers) await c();
  await pool?.end();
  await kafka?.stop();
}, 60_000);

describe("live paths on fakes", () => {
  it("refuses TRADING_MODE=live without Binance keys", async () => {
    await expect(createService(tradingEngine, { env: { ...env, TRADING_MODE: "live" }, defaultMetrics: false })).rejects.toThrow(/BINANCE_API_KEY/);
  });

  it("data-bridge stores only closed klines from the Binance kline stream", async () => {
    const bridge = await createService(dataBridge, { env, defaultMetrics: false });
    services.push(bridge);
    const url = await bridge.listen({ port: 0, host: "127.0.0.1" });
    const last = await waitUntil("closed kline stored", async () => {
      const r = await fetch(`${url}/last/BTCUSDT`);
      return r.ok ? ((await r.json()) as any) : undefined;
    });
    expect(last.price).toBe("101"); // the in-progress 100.5 update was not stored
    const status = (await (await fetch(`${url}/status`)).json()) as any;
    expect(status).toMatchObject({ source: "binance", ingested: 1 });
  });

  it("trading-engine in live mode places the order signed, reconciles a 503 by client order id, and emits the Binance fill once", async () => {
    const engine = await createService(tradingEngine, { env: liveEnv(), defaultMetrics: false });
    services.push(engine);
    liveEngine = engine;
    binance.setPrice("BTCUSDT", "101.5");
    binance.failNext("POST", "/api/v3/order", "503-after"); // created and filled at Binance, answered 503
    const orderId = randomUUID();
    await sendOrders([accepted(orderId, { type: "market", quantity: "0.5", clientOrderId: "user-chosen-1" })], 2); // delivered twice
    const fill = await waitUntil("fill recorded", async () => (await pool.query("SELECT payload FROM te_fills WHERE order_id = $1", [orderId])).rows[0]?.payload, 60_000);
    const [trade] = binance.trades.filter((t) => t.orderId === binance.order(orderId)!.orderId);
    // The adopted order (GET /api/v3/order) carries no fills: they come from GET /api/v3/myTrades.
    expect(fill).toMatchObject({ fillId: `${orderId}:bn${trade.id}`, price: "101.5", quantity: "0.5", fee: "0.05075", side: "buy" });
    await waitUntil("fill event relayed", async () => (await pool.query("SELECT 1 FROM te_outbox WHERE event_id = $1 AND sent_at IS NOT NULL", [fill.fillId])).rowCount === 1);
    // One order at Binance despite the 503 and the duplicate event, under the platform's order id.
    expect(binance.orders.map((o) => o.clientOrderId)).toEqual([orderId]);
    expect(binance.requests(orderId)).toEqual([`POST /api/v3/order ${orderId}`, `GET /api/v3/order ${orderId}`]);
    expect(binance.requests(String(binance.order(orderId)!.orderId))).toEqual([`GET /api/v3/myTrades ${binance.order(orderId)!.orderId}`]);
    expect(Number((await pool.query("SELECT count(*) AS n FROM te_fills WHERE order_id = $1", [orderId])).rows[0].n)).toBe(1);
    // Live mode's admin routes are the service's (tests/trading/live-engine.test.ts: refused records, their release).
    const refusals = await engine.app.inject({ url: "/live/refusals", headers: { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" } });
    expect([refusals.statusCode, refusals.json().unwritten]).toEqual([200, []]);
  });

  it("trading-engine in live mode: a limit resting at Binance is filled by Binance alone (the poll reports it); a cancel is sent to Binance", async () => {
    const [resting, cancelled] = [randomUUID(), randomUUID()];
    await sendOrders([accepted(resting, { type: "limit", limitPrice: "95", quantity: "1" }), accepted(cancelled, { type: "limit", limitPrice: "90", quantity: "2" })]);
    await waitUntil("both resting at Binance", async () => binance.order(resting)?.status === "NEW" && binance.order(cancelled)?.status === "NEW");
    await waitUntil("both recorded resting", async () => (await pool.query("SELECT 1 FROM te_orders WHERE order_id = ANY($1::uuid[]) AND status = 'resting'", [[resting, cancelled]])).rowCount === 2);
    binance.fill(resting, "1", "94.9");
    const fill = await waitUntil("the poll reported Binance's fill", async () => (await pool.query("SELECT payload FROM te_fills WHERE order_id = $1", [resting])).rows[0]?.payload, 30_000);
    expect(fill).toMatchObject({ price: "94.9", quantity: "1", liquidity: "maker" });

    await sendOrders([{ key: cancelled, value: JSON.stringify({ eventId: `${cancelled}:pending_cancel`, type: "order.pending_cancel", order: snapshot(cancelled, { type: "limit", limitPrice: "90", quantity: "2" }, "pending_cancel"), ts: Date.now() }) }]);
    await waitUntil("cancel confirmed", async () => (await pool.query("SELECT 1 FROM te_outbox WHERE event_id = $1", [`${cancelled}:exec:order.cancelled`])).rowCount === 1, 30_000);
    expect(binance.order(cancelled)?.status).toBe("CANCELED");
    expect(binance.requests(cancelled)).toContain(`DELETE /api/v3/order ${cancelled}`);
  });

  it("trading-engine in live mode, restarted after a batch released and sent a held order and died before its COMMIT (its owner halted again): the first poll adopts it from Binance and publishes its fill, no message needed", async () => {
    await liveEngine?.close(); // the process that died
    services.splice(services.indexOf(liveEngine!), 1);
    const owner = randomUUID();
    const h: OrderRequest = { orderId: randomUUID(), userId: owner, symbol: "ETHUSDT", side: "buy", type: "limit", quantity: "1", limitPrice: "95" };
    // What the dead attempt left: the order's `held` row (its release rolled back), its te_live_sends record, the order at Binance, filled there since.
    await pool.query("INSERT INTO trading_states (scope, state) VALUES ($1, 'halted') ON CONFLICT (scope) DO UPDATE SET state = 'halted'", [`user:${owner}`]);
    await pool.query("INSERT INTO te_orders (order_id, payload, status, remaining, fill_seq) VALUES ($1, $2, 'held', 1, 0)", [h.orderId, JSON.stringify(h)]);
    await pool.query("INSERT INTO te_live_sends (order_id) VALUES ($1)", [h.orderId]);
    binance.setPrice("ETHUSDT", "100");
    await new BinanceTradingClient({ apiKey: "live-key", secretKey: SECRET, baseUrl: binance.url }).placeOrderReconciled(toBinanceOrder(h));
    binance.fill(h.orderId, "1", "94.9");

    const engine = await createService(tradingEngine, { env: liveEnv(), defaultMetrics: false });
    services.push(engine);
    liveEngine = engine;
    const fill = await waitUntil("the poll recorded Binance's fill", async () => (await pool.query("SELECT payload FROM te_fills WHERE order_id = $1", [h.orderId])).rows[0]?.payload, 30_000);
    expect(fill).toMatchObject({ price: "94.9", quantity: "1", side: "buy", userId: owner });
    await waitUntil("fill event published to Kafka", async () => (await pool.query("SELECT 1 FROM te_outbox WHERE event_id = $1 AND sent_at IS NOT NULL", [fill.fillId])).rowCount === 1);
    expect((await pool.query("SELECT status, remaining::text AS remaining FROM te_orders WHERE order_id = $1", [h.orderId])).rows[0]).toEqual({ status: "filled", remaining: "0" });
    expect((await pool.query("SELECT 1 FROM te_live_sends WHERE order_id = $1", [h.orderId])).rowCount).toBe(0);
    expect(binance.requests(h.orderId)).toEqual([`POST /api/v3/order ${h.orderId}`, `GET /api/v3/order ${h.orderId}`]); // looked up, never placed again
  });
});

const liveEnv = () => ({ ...env, TRADING_MODE: "live", BINANCE_API_KEY: "live-key", BINANCE_SECRET_KEY: SECRET, TE_LIVE_POLL_MS: "100" });
const snapshot = (orderId: string, o: Record<string, string>, status = "accepted") => ({
  orderId, clientOrderId: orderId, userId: "u-live", symbol: "BTCUSDT", side: "buy", type: "market", quantity: "0.5", status, filledQuantity: "0", avgFillPrice: null, fees: "0",
  rejectReason: null, rejectMessage: null, lastPrice: "101", createdAt: "", updatedAt: "", ...o,
});
const accepted = (orderId: string, o: Record<string, string>) => ({ key: orderId, value: JSON.stringify({ eventId: `${orderId}:accepted`, type: "order.accepted", order: snapshot(orderId, o), ts: Date.now() }) });
async function sendOrders(messages: { key: string; value: string }[], times = 1): Promise<void> {
  const producer = new kafkajs.Kafka({ brokers: [kafka.url], logLevel: kafkajs.logLevel.NOTHING }).producer();
  await producer.connect();
  await producer.send({ topic: "trading.orders", messages: Array.from({ length: times }, () => messages).flat() });
  await producer.disconnect();
}
