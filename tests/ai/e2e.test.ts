/**
 * The AI tier end to end through the real services (in-process, real PostgreSQL, Redis, Kafka,
 * ClickHouse and, when built, Weaviate): planted bars in through data-bridge -> ml-predictor's
 * train command (real Python job) trains and promotes -> ai-orchestrator places paper orders
 * through order-management -> trading-engine fills them on the paper exchange -> each decision is
 * traceable to the model version and inputs. Kill switch (halted / reduce-only), stale model,
 * missing features and the strategy's own loss stop each produce recorded decisions and no order.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, pg, Redis } from "../harness";
import { useServersWith } from "../harness/shared";
import { weaviateAvailability } from "../harness/weaviate";
import { createService, runCommand, type Service } from "../../services/src/kit";
import { createClickHouse } from "../../services/src/kit/datastores";
import { ensureKafkaTopics } from "../../services/src/migrations";
import databaseService from "../../services/src/services/database-service";
import dataBridge, { candleRow } from "../../services/src/services/data-bridge";
import orderManagement from "../../services/src/services/order-management";
import tradingEngine from "../../services/src/services/trading-engine";
import mlPredictor from "../../services/src/services/ml-predictor";
import aiOrchestrator from "../../services/src/services/ai-orchestrator";
import aiChainAnalytics from "../../services/src/services/ai-chain-analytics";
import { TRADING_STATE_KEYS } from "../../services/src/trading/tradingState";
import { plantedBars } from "../helpers/planted-bars";
import { ML_DIR, mlPython } from "../helpers/ml-python";
import { ensureAccount } from "../helpers/accounts";
import { http, waitUntil } from "../trading/e2e-helpers";

const { available: withWeaviate } = weaviateAvailability();
// A broker of this file's own: it runs a trading-engine (harness/shared.ts privateKafka).
const srv = withWeaviate ? useServersWith({ privateKafka: true }, "postgres", "redis", "kafka", "clickhouse", "weaviate") : useServersWith({ privateKafka: true }, "postgres", "redis", "kafka", "clickhouse");
const run = randomBytes(3).toString("hex");
const SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"];
const BARS = 6000;
const user = randomUUID();
const headers = { "x-user-id": user, "x-user-role": "trader", "x-auth-method": "jwt" };

let env: Record<string, string>;
const services: Service<any>[] = [];
let urls: Record<string, string> = {};
let orch: string;
let chains: string;
let redis: InstanceType<typeof Redis>;
let db: InstanceType<typeof pg.Client>;
let modelVersion: string;

async function start(mod: any, extra: Record<string, string> = {}): Promise<string> {
  const s = await createService(mod, { env: { ...env, ...urls, ...extra }, defaultMetrics: false });
  services.push(s);
  return s.listen({ port: 0, host: "127.0.0.1" });
}
const strategy = async (body: Record<string, unknown>, base = orch) => {
  const r = await http("POST", `${base}/strategies`, { headers, body: { name: "s", symbols: SYMBOLS, buyAbove: 0.01, sellBelow: 0.005, orderQuantity: 1, maxPosition: 10, stopLoss: 1e9, enabled: true, ...body } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.strategyId as string;
};
const evaluate = async (id: string, base = orch) => {
  const r = await http("POST", `${base}/strategies/${id}/evaluate`, { headers });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.decisions as any[];
};
const orderCount = async () => Number((await db.query("SELECT count(*) AS n FROM om_orders WHERE user_id = $1", [user])).rows[0].n);

beforeAll(async () => {
  env = {
    ...srv.env,
    LOG_LEVEL: "error",
    OM_CONSUMER_GROUP: `om-${run}`,
    TE_CONSUMER_GROUP: `te-${run}`,
    CANDLES_WRITER_GROUP: `md-${run}`,
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    KAFKA_HEARTBEAT_MS: "500",
    OM_OUTBOX_INTERVAL_MS: "50",
    TE_OUTBOX_INTERVAL_MS: "50",
    PAPER_TAKER_FEE_BPS: "10",
    PAPER_SLIPPAGE_BPS: "5",
    RISK_MAX_ORDER_QUANTITY: "100",
    RISK_MAX_ORDERS_PER_WINDOW: "1000",
    MARKET_SUBSCRIBE: "false",
    CH_FLUSH_MS: "200",
    ML_PYTHON: await mlPython(),
    ML_TRAINING_DIR: ML_DIR,
    ML_TRAIN_SYMBOLS: SYMBOLS.join(","),
    ML_TRAIN_BARS: String(BARS),
    ML_RELOAD_MS: "0",
    ORCH_TICK_MS: "0",
    ORCH_PREDICT_TIMEOUT_MS: "60000",
    // The bars end at the minute this file started; training takes minutes before the first evaluation.
    ORCH_MAX_PREDICTION_AGE_BARS: "1440",
  };
  expect(await runCommand(databaseService, "migrate", [], { env, defaultMetrics: false })).toBe(0);
  const admin = new kafkajs.Kafka({ brokers: env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  await ensureKafkaTopics(admin);
  // A broker that just started may not have a group coordinator yet (__consumer_offsets being
  // created); consumers started before that give up. Wait for one on this loaded machine.
  await waitUntil("kafka group coordinator", async () => (await admin.describeGroups([`probe-${run}`])).groups.length === 1, 180_000, 1000);
  await admin.disconnect();
  redis = new Redis(env.DRAGONFLY_URL);
  db = new pg.Client({ connectionString: env.POSTGRES_URL });
  await db.connect();
  await ensureAccount(db, user);

  const bridge = await start(dataBridge);
  urls.SERVICE_ORDER_MANAGEMENT_URL = await start(orderManagement);
  urls.SERVICE_TRADING_ENGINE_URL = await start(tradingEngine);
  // Bars ending at the current minute. The history goes straight into ClickHouse in data-bridge's
  // own row format (candleRow); the last LIVE bars of each symbol flow through data-bridge itself
  // (Kafka to the engine, ClickHouse, last prices). The engine handles each bar in its own
  // transaction: 18,000 bars through Kafka would take minutes on 2 loaded cores.
  const LIVE = 50;
  const minute = Math.floor(Date.now() / 60_000) * 60_000;
  // A client per use: ClickHouse 18.16 closes idle keep-alive sockets after 3 s (ECONNRESET on reuse).
  const chClient = () => createClickHouse({ CLICKHOUSE_URL: env.CLICKHOUSE_URL, CLICKHOUSE_USER: env.CLICKHOUSE_USER, CLICKHOUSE_PASSWORD: env.CLICKHOUSE_PASSWORD, CLICKHOUSE_DATABASE: env.CLICKHOUSE_DATABASE });
  for (const symbol of [...SYMBOLS, "SHORTUSDT"]) {
    const n = symbol === "SHORTUSDT" ? 30 : BARS;
    const bars = plantedBars({ symbol, bars: n, seed: `e2e-${symbol}`, plantedSignal: 0.5, origin: minute - (n - 1) * 60_000 }).map((b) => ({
      symbol, interval: "1m", openTime: b.openTime, closeTime: b.openTime + 59_999,
      open: String(b.open), high: String(b.high), low: String(b.low), close: String(b.close), volume: String(b.volume),
    }));
    const history = bars.slice(0, -LIVE);
    const ch = chClient();
    for (let i = 0; i < history.length; i += 5000) await ch.insert("market_candles", history.slice(i, i + 5000).map((b) => candleRow(b, "backfill")));
    await ch.close();
    const r = await http("POST", `${bridge}/internal/bars`, { body: { bars: bars.slice(-LIVE), flush: true } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
  }
  await waitUntil("bars in ClickHouse", async () => {
    const ch = chClient();
    try {
      // This file's symbols only, each bar once (a replayed batch leaves duplicate rows until a merge).
      const mine = [...SYMBOLS, "SHORTUSDT"].map((s) => `'${s}'`).join(", ");
      return (await ch.query<{ n: string }>(`SELECT uniqExact(symbol, timeframe, open_time) AS n FROM market_candles WHERE symbol IN (${mine})`))[0].n === String(3 * BARS + 30);
    } finally {
      await ch.close();
    }
  }, 120_000, 500);
  for (const symbol of SYMBOLS)
    await waitUntil(`engine saw the last ${symbol} bar`, async () => (await http("GET", `${urls.SERVICE_TRADING_ENGINE_URL}/last/${symbol}`)).body.bar?.openTime === minute, 180_000);

  // Model trained on those bars and promoted by the retraining job.
  expect(await runCommand(mlPredictor, "train", [], { env, defaultMetrics: false })).toBe(0);
  modelVersion = (await db.query("SELECT version FROM ml_models WHERE status = 'promoted'")).rows[0].version;
  urls.SERVICE_ML_PREDICTOR_URL = await start(mlPredictor);
  orch = await start(aiOrchestrator);
  chains = await start(aiChainAnalytics, { SERVICE_AI_ORCHESTRATOR_URL: orch, CHAIN_POLL_MS: "200", CHAIN_REREAD_MS: "2000", CHAIN_CONSUMER_GROUP: `chain-${run}` });
}, 900_000);

afterAll(async () => {
  for (const s of services.reverse()) await s.close().catch(() => undefined);
  await redis?.quit();
  await db?.end();
}, 60_000);

describe("AI tier end to end", () => {
  let strategyId: string;

  it("places paper orders from predictions; they fill; every decision is traceable to its inputs", async () => {
    strategyId = await strategy({});
    // The position an evaluation sees is the fills order-management reports, so the second
    // evaluation starts only once the first one's orders have filled (on a loaded machine the
    // fills can trail the HTTP answers).
    const filled = async (batch: Awaited<ReturnType<typeof evaluate>>) => {
      for (const d of batch) {
        expect(d.risk.status).toBe("accepted");
        const o = await waitUntil(`order ${d.orderId} filled`, async () => {
          const o = await http("GET", `${urls.SERVICE_ORDER_MANAGEMENT_URL}/${d.orderId}`, { headers });
          return o.body.status === "filled" ? o.body : undefined;
        }, 60_000);
        // The decision is made (and stamped) before its order is submitted, by the same clock.
        expect(Date.parse(o.createdAt)).toBeGreaterThanOrEqual(Date.parse(d.decidedAt));
      }
    };
    const first = await evaluate(strategyId);
    await filled(first);
    const second = await evaluate(strategyId);
    await filled(second);
    const decisions = [...first, ...second];
    expect(decisions.map((d) => d.action)).toEqual(new Array(6).fill("buy"));
    expect(await orderCount()).toBe(6);
    const traced = (await http("GET", `${orch}/decisions/${second[0].decisionId}`, { headers })).body;
    expect(traced).toMatchObject({ modelVersion, symbol: "AAAUSDT", action: "buy", orderId: second[0].orderId, tradingState: "active", positionBefore: 1 });
    expect(Object.keys(traced.features)).toHaveLength(11);
    expect(traced.probabilityUp).toBeGreaterThan(0);
    expect(traced.decisionPrice).toBeGreaterThan(0);
    if (withWeaviate) {
      expect(traced.regimes).toHaveLength(5);
      expect(traced.regimes[0]).toMatchObject({ symbol: expect.any(String), forwardReturn: expect.any(Number), distance: expect.any(Number) });
    }
    const list = (await http("GET", `${orch}/strategies/${strategyId}/decisions`, { headers })).body.decisions;
    expect(list).toHaveLength(6);
  }, 300_000);

  it("kill switch: halted places nothing, reduce-only allows no new exposure; both recorded", async () => {
    const before = await orderCount();
    await redis.set(TRADING_STATE_KEYS.global, "halted");
    try {
      const d = await evaluate(strategyId);
      expect(d.map((x) => [x.action, x.reason, x.tradingState])).toEqual(SYMBOLS.map(() => ["skip", "trading is halted", "halted"]));
      await redis.del(TRADING_STATE_KEYS.global);
      await redis.set(TRADING_STATE_KEYS.user(user), "reduce_only");
      const r = await evaluate(strategyId);
      expect(r.map((x) => [x.action, x.reason])).toEqual(SYMBOLS.map(() => ["hold", "reduce-only: no new exposure"]));
      expect(await orderCount()).toBe(before);
    } finally {
      await redis.del(TRADING_STATE_KEYS.global, TRADING_STATE_KEYS.user(user));
    }
  }, 120_000);

  it("ai-chain-analytics: the chains appear with the right counts, slippage, latency and a traceable chain", async () => {
    // So far this strategy: 6 buys (filled), 3 halted skips, 3 reduce-only holds.
    const fills = Number(
      (await db.query("SELECT count(*) AS n FROM om_order_fills f JOIN om_orders o USING (order_id) WHERE o.user_id = $1", [user])).rows[0].n,
    );
    expect(fills).toBeGreaterThanOrEqual(6);
    const summary = await waitUntil("chains in analytics", async () => {
      const r = await http("GET", `${chains}/summary?strategyId=${strategyId}`, { headers });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const s = r.body.summary[0];
      return s && s.decisions === 12 && s.fills === fills && s.orders === 6 ? s : undefined;
    }, 120_000, 500);
    expect(summary).toMatchObject({ modelVersion, strategyId, decisions: 12, trades: 6, orders: 6, filledDecisions: 6 });
    expect(summary.hitRate).toBeGreaterThanOrEqual(0);
    expect(summary.hitRate).toBeLessThanOrEqual(1);
    // Paper fills: market orders at the bar's price plus PAPER_SLIPPAGE_BPS (5) against the decision's close.
    expect(summary.slippageBps).toBeGreaterThan(0);
    expect(summary.slippageBps).toBeLessThan(100);
    // Decision -> order: both instants from the one PostgreSQL clock, the decision stamped first.
    expect(summary.decisionToOrderMs.p50).toBeGreaterThanOrEqual(0);
    expect(summary.decisionToOrderMs.p95).toBeGreaterThanOrEqual(summary.decisionToOrderMs.p50);
    expect(summary.orderToFillMs.p50).toBeGreaterThanOrEqual(0);
    // PnL attribution: bought at the last close plus slippage and fees, marked at that close: a loss.
    expect(summary.pnl).toBeLessThan(0);

    const d = (await http("GET", `${orch}/strategies/${strategyId}/decisions?limit=1000`, { headers })).body.decisions.find((x: { action: string }) => x.action === "buy");
    const chain = await http("GET", `${chains}/chains/${d.decisionId}`, { headers });
    expect(chain.status, JSON.stringify(chain.body)).toBe(200);
    expect(chain.body.decision).toMatchObject({ decisionId: d.decisionId, modelVersion, symbol: d.symbol, action: "buy" });
    expect(chain.body.orders).toEqual([{ orderId: d.orderId, status: "filled", side: "buy" }]);
    expect(chain.body.fills.length).toBeGreaterThanOrEqual(1);
    expect(chain.body.fills.every((f: { orderId: string }) => f.orderId === d.orderId)).toBe(true);
    const stranger = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    expect((await http("GET", `${chains}/chains/${d.decisionId}`, { headers: stranger })).status).toBe(404);
    expect((await http("GET", `${chains}/summary?strategyId=${strategyId}`, { headers: stranger })).body.summary).toEqual([]);
    expect((await http("GET", `${chains}/chains/not-a-uuid`, { headers })).status).toBe(400);
    expect((await http("GET", `${chains}/summary?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`, { headers })).status).toBe(400);
    expect((await http("GET", `${chains}/chains/${d.decisionId}/graph`, { headers })).status).toBe(404); // no ArangoDB here
    const metrics = (await http("GET", `${chains}/metrics`)).body as string;
    expect(metrics).toContain(`ai_chain_orders{model_version="${modelVersion}",strategy_id="${strategyId}"`);
  }, 180_000);

  it("missing features and a stale model are recorded refusals, no order", async () => {
    const before = await orderCount();
    const shortId = await strategy({ symbols: ["AAAUSDT", "SHORTUSDT"] });
    const d = await evaluate(shortId);
    expect(d.map((x) => x.action)).toEqual(["skip", "skip"]);
    expect(d[0].reason).toBe("no prediction: MISSING_FEATURES");
    expect(d[0].error).toMatch(/SHORTUSDT: cannot compute the model's features: needs 61 bars, has 30/);

    await db.query("UPDATE ml_models SET trained_at = now() - interval '3 days' WHERE status = 'promoted'");
    try {
      // A replica that loads the (now 3-day-old) promoted model with a 48 h limit.
      const strict = await start(mlPredictor, { ML_MAX_MODEL_AGE_HOURS: "48" });
      const orch2 = await start(aiOrchestrator, { SERVICE_ML_PREDICTOR_URL: strict });
      const s = await strategy({}, orch2);
      const stale = await evaluate(s, orch2);
      expect(stale.map((x) => [x.action, x.reason])).toEqual(SYMBOLS.map(() => ["skip", "no prediction: MODEL_TOO_OLD"]));
    } finally {
      await db.query("UPDATE ml_models SET trained_at = now() WHERE status = 'promoted'");
    }
    expect(await orderCount()).toBe(before);
  }, 120_000);

  it("the strategy's own loss stop halts it after a loss and is recorded", async () => {
    const id = await strategy({ symbols: ["AAAUSDT"], stopLoss: 0.0001 });
    const [buy] = await evaluate(id);
    expect(buy.action).toBe("buy");
    await waitUntil("filled", async () => (await http("GET", `${urls.SERVICE_ORDER_MANAGEMENT_URL}/${buy.orderId}`, { headers })).body.status === "filled", 60_000);
    // Fees and slippage make the fresh position a loss at the same close: the stop trips.
    const [next] = await evaluate(id);
    expect(next).toMatchObject({ action: "skip", reason: "strategy stopped by its loss limit" });
    const s = (await http("GET", `${orch}/strategies/${id}`, { headers })).body;
    expect(s).toMatchObject({ status: "stopped" });
    expect(s.stoppedReason).toMatch(/reached the stop 0.0001/);
  }, 120_000);
});
