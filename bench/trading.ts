/**
 * Trading core benchmark on this machine (npx tsx bench/trading.ts [orders] [concurrency] [bars]).
 * Starts private PostgreSQL, Redis, Kafka and ClickHouse (tests/harness), applies the migrations,
 * runs api-gateway, order-management, trading-engine, portfolio-manager and data-bridge in this
 * process, then measures:
 *   1. orders/s end to end: market orders POSTed through the gateway (JWT) -> risk check + outbox
 *      -> Kafka -> engine fill -> Kafka -> portfolio applied (pm_fills rows), and the p50/p99
 *      latency from the start of the HTTP submit to the fill event on trading.executions;
 *   2. bars/s ingested by data-bridge (POST /internal/bars in batches) until they are all in
 *      ClickHouse (market_candles via the client's insert(), JSONEachRow).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { freePort, kafkajs, pg, startClickHouse, startKafka, startPostgres, startRedis } from "../tests/harness";
import { createService, jwtKey, signAccessToken, type Service } from "../services/src/kit";
import { createClickHouse } from "../services/src/kit/datastores";
import { ensureKafkaTopics, runClickHouseMigrations, runPostgresMigrations } from "../services/src/migrations";
import apiGateway from "../services/src/services/api-gateway";
import orderManagement from "../services/src/services/order-management";
import tradingEngine from "../services/src/services/trading-engine";
import portfolioManager from "../services/src/services/portfolio-manager";
import dataBridge from "../services/src/services/data-bridge";
import { SyntheticSource } from "../services/src/trading/marketdata/synthetic";

const ORDERS = Number(process.argv[2] ?? 500);
const CONCURRENCY = Number(process.argv[3] ?? 16);
const BARS = Number(process.argv[4] ?? 20_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

async function main() {
  const t0 = Date.now();
  const [postgres, redis, kafka, clickhouse] = await Promise.all([startPostgres(), startRedis(), startKafka(), startClickHouse()]);
  console.log(`servers up in ${Date.now() - t0} ms`);
  const services: Service<any>[] = [];
  try {
    const secret = randomBytes(64).toString("hex");
    const env: Record<string, string> = {
      ...postgres.env, ...redis.env, ...kafka.env, ...clickhouse.env,
      LOG_LEVEL: "error",
      JWT_SECRET: secret,
      POSTGRES_POOL_MAX: "10",
      RATE_LIMIT_MAX_REQUESTS: "10000000",
      RISK_MAX_ORDERS_PER_WINDOW: "100000",
      RISK_MAX_POSITION: "1000000",
      OM_OUTBOX_INTERVAL_MS: "20",
      TE_OUTBOX_INTERVAL_MS: "20",
      MARKET_SUBSCRIBE: "false",
      CH_BATCH_SIZE: "5000",
      CH_FLUSH_MS: "200",
      KAFKA_SESSION_TIMEOUT_MS: "6000",
      KAFKA_HEARTBEAT_MS: "500",
    };
    const pool = new pg.Pool({ connectionString: env.POSTGRES_URL, max: 2 });
    await runPostgresMigrations(pool);
    const ch = createClickHouse({ CLICKHOUSE_URL: env.CLICKHOUSE_URL, CLICKHOUSE_USER: env.CLICKHOUSE_USER, CLICKHOUSE_PASSWORD: env.CLICKHOUSE_PASSWORD, CLICKHOUSE_DATABASE: env.CLICKHOUSE_DATABASE });
    await runClickHouseMigrations(ch);
    const k = new kafkajs.Kafka({ brokers: env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
    const admin = k.admin();
    await admin.connect();
    await ensureKafkaTopics(admin);
    await admin.disconnect();

    const urls: Record<string, string> = {};
    for (const [name, mod] of Object.entries({ "order-management": orderManagement, "trading-engine": tradingEngine, "portfolio-manager": portfolioManager, "data-bridge": dataBridge })) {
      const s = await createService(mod as any, { env, defaultMetrics: false });
      services.push(s);
      urls[`SERVICE_${name.toUpperCase().replace(/-/g, "_")}_URL`] = await s.listen({ port: await freePort(), host: "127.0.0.1" });
    }
    const g = await createService(apiGateway, { env: { ...env, ...urls }, defaultMetrics: false });
    services.push(g);
    const gw = await g.listen({ port: 0, host: "127.0.0.1" });
    const bridge = urls.SERVICE_DATA_BRIDGE_URL;
    const token = await signAccessToken(jwtKey(secret), { userId: randomUUID(), role: "trader" }, 3600);

    // Fill-event listener (submit -> fill latency).
    const fillAt = new Map<string, number>();
    const consumer = k.consumer({ groupId: `bench-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({ topic: "trading.executions", fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => {
      const m = JSON.parse(message.value!.toString());
      if (m.type === "fill" && !fillAt.has(m.fill.orderId)) fillAt.set(m.fill.orderId, performance.now());
    } });

    // One bar so market orders have a price; wait for the engine to see it.
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    const seedBars = await new SyntheticSource({ seed: "bench", startPrices: { BTCUSDT: "100" }, origin: minute - 5 * 60_000 }).history("BTCUSDT", "1m", { limit: 5 });
    await fetch(`${bridge}/internal/bars`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ bars: seedBars }) });
    for (;;) {
      const r = await (await fetch(`${urls.SERVICE_TRADING_ENGINE_URL}/last/BTCUSDT`)).json();
      if (r.bar?.openTime === seedBars[4].openTime) break;
      await sleep(100);
    }
    // Warm-up (JIT, pools, consumer assignment).
    const submitOne = async (i: number) => {
      const started = performance.now();
      const r = await fetch(`${gw}/api/orders`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": `bench-${i}` },
        body: JSON.stringify({ symbol: "BTCUSDT", side: i % 2 ? "sell" : "buy", type: "market", quantity: "0.01" }),
      });
      const body = await r.json();
      if (r.status !== 201 || body.status !== "accepted") throw new Error(`order ${i}: ${r.status} ${JSON.stringify(body)}`);
      return { orderId: body.orderId as string, started, acked: performance.now() };
    };
    for (let i = 0; i < 20; i++) await submitOne(-1 - i);
    while (fillAt.size < 20) await sleep(50);
    const pmBase = Number((await pool.query("SELECT count(*) AS n FROM pm_fills")).rows[0].n);

    // 1. Orders end to end.
    const results: { orderId: string; started: number; acked: number }[] = [];
    let next = 0;
    const tStart = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < ORDERS) results.push(await submitOne(next++));
    }));
    const tAcked = performance.now();
    while (results.some((r) => !fillAt.has(r.orderId))) await sleep(5);
    const tFilled = performance.now();
    for (;;) {
      const n = Number((await pool.query("SELECT count(*) AS n FROM pm_fills")).rows[0].n) - pmBase;
      if (n >= ORDERS) break;
      await sleep(20);
    }
    const tApplied = performance.now();
    const lat = results.map((r) => fillAt.get(r.orderId)! - r.started);
    const ack = results.map((r) => r.acked - r.started);
    console.log(`orders: ${ORDERS} market orders, concurrency ${CONCURRENCY}, through api-gateway -> order-management -> Kafka -> trading-engine -> Kafka -> portfolio-manager`);
    console.log(`  submit (HTTP 201) throughput: ${(ORDERS / ((tAcked - tStart) / 1000)).toFixed(1)} orders/s; submit latency p50 ${pct(ack, 50).toFixed(1)} ms, p99 ${pct(ack, 99).toFixed(1)} ms`);
    console.log(`  end to end (last fill event): ${(ORDERS / ((tFilled - tStart) / 1000)).toFixed(1)} orders/s`);
    console.log(`  end to end (last fill applied to the portfolio): ${(ORDERS / ((tApplied - tStart) / 1000)).toFixed(1)} orders/s`);
    console.log(`  submit-to-fill latency: p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms`);
    await consumer.disconnect();
    // Where the time goes (database timestamps = transaction start times).
    const stage = async (label: string, sql: string) => {
      const r = await pool.query<{ p50: number; p99: number }>(
        `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99 FROM (${sql}) x`,
        [results.map((r) => r.orderId)],
      );
      console.log(`  ${label}: p50 ${Number(r.rows[0].p50).toFixed(1)} ms, p99 ${Number(r.rows[0].p99).toFixed(1)} ms`);
    };
    await stage("order committed -> engine fill committed", "SELECT extract(epoch FROM f.created_at - o.created_at) * 1000 AS ms FROM om_orders o JOIN te_fills f ON f.order_id = o.order_id WHERE o.order_id = ANY($1::uuid[])");
    await stage("order committed -> accepted event relayed", "SELECT extract(epoch FROM x.sent_at - o.created_at) * 1000 AS ms FROM om_orders o JOIN om_outbox x ON x.event_id = o.order_id || ':accepted' WHERE o.order_id = ANY($1::uuid[])");
    await stage("engine fill committed -> fill event relayed", "SELECT extract(epoch FROM x.sent_at - f.created_at) * 1000 AS ms FROM te_fills f JOIN te_outbox x ON x.event_id = f.fill_id WHERE f.order_id = ANY($1::uuid[])");
    await stage("engine fill committed -> portfolio applied", "SELECT extract(epoch FROM p.applied_at - f.created_at) * 1000 AS ms FROM te_fills f JOIN pm_fills p ON p.fill_id = f.fill_id WHERE f.order_id = ANY($1::uuid[])");

    // 2. Bars into ClickHouse through data-bridge.
    const batch = 1000;
    const origin = Date.UTC(2020, 0, 1);
    const bars = await new SyntheticSource({ seed: "bench-bars", startPrices: { BENCHUSDT: "100" }, origin }).history("BENCHUSDT", "1m", { limit: BARS });
    const before = Number((await ch.query<{ n: string }>("SELECT count() AS n FROM market_candles")).at(0)!.n);
    const b0 = performance.now();
    for (let i = 0; i < bars.length; i += batch) {
      const r = await fetch(`${bridge}/internal/bars`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ bars: bars.slice(i, i + batch) }) });
      if (r.status !== 200) throw new Error(`bars: ${r.status} ${await r.text()}`);
    }
    const bPosted = performance.now();
    for (;;) {
      const n = Number((await ch.query<{ n: string }>("SELECT count() AS n FROM market_candles")).at(0)!.n) - before;
      if (n >= BARS) break;
      await sleep(20);
    }
    const bDone = performance.now();
    console.log(`bars: ${BARS} bars in batches of ${batch} via data-bridge (Kafka market.candles + Dragonfly last price + ClickHouse insert() JSONEachRow, batch ${env.CH_BATCH_SIZE})`);
    console.log(`  accepted by data-bridge: ${(BARS / ((bPosted - b0) / 1000)).toFixed(0)} bars/s; in ClickHouse: ${(BARS / ((bDone - b0) / 1000)).toFixed(0)} bars/s`);
    await ch.close();
    await pool.end();
  } finally {
    for (const s of services.reverse()) await s.close().catch(() => undefined);
    await Promise.allSettled([postgres.stop(), redis.stop(), kafka.stop(), clickhouse.stop()]);
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
