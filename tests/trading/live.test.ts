/**
 * Live paths against fakes on loopback (no Binance is reachable here): data-bridge with
 * MARKET_DATA_SOURCE=binance on a fake kline WebSocket, and trading-engine with TRADING_MODE=live on a
 * fake signed REST API that answers 503 after creating the order (unknown outcome -> reconciliation).
 * A private Kafka keeps these topics apart from the other test files.
 */
import { createServer } from "node:http";
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
import { sign } from "../../services/src/trading/binance/adapter";
import { waitUntil } from "./e2e-helpers";

const srv = useServers("postgres", "redis");
const SECRET = "live-test-secret";
let kafka: KafkaServer;
let env: Record<string, string>;
let pool: InstanceType<typeof pg.Pool>;
const services: Service<any>[] = [];
const closers: (() => void)[] = [];
const binanceLog: string[] = [];
const orders = new Map<string, any>();

beforeAll(async () => {
  kafka = await startKafka();
  // Fake Binance REST: verifies signatures; the first order POST is created but answered 503.
  const rest = createServer((req, res) => {
    const u = new URL(req.url!, "http://x");
    const q = u.search.slice(1);
    const i = q.lastIndexOf("&signature=");
    if (req.headers["x-mbx-apikey"] !== "live-key" || sign(q.slice(0, i), SECRET) !== q.slice(i + 11)) {
      res.writeHead(401);
      res.end('{"code":-1022,"msg":"Signature for this request is not valid."}');
      return;
    }
    const p = u.searchParams;
    const cid = p.get("newClientOrderId") ?? p.get("origClientOrderId")!;
    binanceLog.push(`${req.method} ${u.pathname} ${cid}`);
    if (req.method === "GET") {
      const o = orders.get(cid);
      res.writeHead(o ? 200 : 400, { "content-type": "application/json" });
      res.end(o ? JSON.stringify(o) : '{"code":-2013,"msg":"Order does not exist."}');
      return;
    }
    const o = { symbol: p.get("symbol"), orderId: orders.size + 1, clientOrderId: cid, price: "0", origQty: p.get("quantity"), executedQty: p.get("quantity"), cummulativeQuoteQty: "0", status: "FILLED", type: p.get("type"), side: p.get("side"), transactTime: 1_700_000_000_000, fills: [{ price: "101.5", qty: p.get("quantity"), commission: "0.1015", commissionAsset: "USDT", tradeId: 4242 }] };
    const first = orders.size === 0;
    orders.set(cid, o);
    res.writeHead(first ? 503 : 200, { "content-type": "application/json", "x-mbx-used-weight-1m": "7" });
    res.end(first ? '{"code":-1000,"msg":"Unknown error, please check your request or try again later."}' : JSON.stringify(o));
  });
  await new Promise<void>((r) => rest.listen(0, "127.0.0.1", r));
  closers.push(() => { rest.closeAllConnections(); rest.close(); });
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
    BINANCE_REST_URL: `http://127.0.0.1:${(rest.address() as AddressInfo).port}`,
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
  closers.forEach((c) => c());
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
    const engine = await createService(tradingEngine, { env: { ...env, TRADING_MODE: "live", BINANCE_API_KEY: "live-key", BINANCE_SECRET_KEY: SECRET }, defaultMetrics: false });
    services.push(engine);
    const orderId = randomUUID();
    const producer = new kafkajs.Kafka({ brokers: [kafka.url], logLevel: kafkajs.logLevel.NOTHING }).producer();
    await producer.connect();
    const snapshot = { orderId, clientOrderId: orderId, userId: "u-live", symbol: "BTCUSDT", side: "buy", type: "market", quantity: "0.5", status: "accepted", filledQuantity: "0", avgFillPrice: null, fees: "0", rejectReason: null, rejectMessage: null, lastPrice: "101", createdAt: "", updatedAt: "" };
    const msg = { key: orderId, value: JSON.stringify({ eventId: `${orderId}:accepted`, type: "order.accepted", order: snapshot, ts: Date.now() }) };
    await producer.send({ topic: "trading.orders", messages: [msg, msg] }); // delivered twice
    await producer.disconnect();
    const fill = await waitUntil("fill recorded", async () => (await pool.query("SELECT payload FROM te_fills WHERE order_id = $1", [orderId])).rows[0]?.payload, 60_000);
    expect(fill).toMatchObject({ fillId: `${orderId}:bn4242`, price: "101.5", quantity: "0.5", fee: "0.1015", side: "buy" });
    await waitUntil("fill event relayed", async () => (await pool.query("SELECT 1 FROM te_outbox WHERE event_id = $1 AND sent_at IS NOT NULL", [fill.fillId])).rowCount === 1);
    expect(orders.size).toBe(1); // one order at Binance despite the 503 and the duplicate event
    expect(binanceLog).toEqual([`POST /api/v3/order ${orderId}`, `GET /api/v3/order ${orderId}`]);
    expect(Number((await pool.query("SELECT count(*) AS n FROM te_fills WHERE order_id = $1", [orderId])).rows[0].n)).toBe(1);
  });
});
