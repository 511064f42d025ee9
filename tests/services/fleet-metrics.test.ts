/**
 * The dashboards read what the services really export. Every implemented catalog service runs
 * against the harness's real PostgreSQL, Redis (as Dragonfly), Kafka and ClickHouse (the
 * hostile suite's platform, with the default process metrics on as in production); each one's
 * /metrics is read, and every metric name any panel query or dashboard variable of the built
 * dashboards (components/monitoring/dashboards.ts, the builder tests/unit/dashboards.test.ts checks
 * with promtool) reads must be exported by at least one service. prom-client prints HELP/TYPE lines
 * before any observation, so names need no traffic. For the trading metrics one real flow runs:
 * a refused order, a market buy and a market sell filled through order-management, Kafka and the
 * trading-engine, applied by portfolio-manager; their samples must then appear.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardFiles, PROMETHEUS_OWN_SERIES } from "../../components/monitoring/dashboards";
import { lastPriceKey, TOPICS } from "../../services/src/trading/events";
import { kafkajs, Redis } from "../harness";
import { useServersWith } from "../harness/shared";
import { startPlatform, type Platform } from "../helpers/platform";
import { exportedSeries, metricNames, parseSamples, variableMetric } from "../helpers/promql";
import { http, waitUntil } from "../trading/e2e-helpers";

// A broker of this file's own: it runs a trading-engine (harness/shared.ts privateKafka).
const srv = useServersWith({ privateKafka: true }, "postgres", "redis", "kafka", "clickhouse");
let p: Platform;
/** Bound of every wait: generous, it only guards against a hang on a loaded machine. */
const WAIT_MS = 240_000;

type Built = { title: string; panels: Array<{ type: string; title: string; targets?: Array<{ expr?: string }> }>; templating?: { list?: Array<{ name: string; query?: unknown }> } };
/** Every metric a built dashboard reads, with where (panel queries and `label_values` variables). */
function dashboardMetrics(): Map<string, string[]> {
  const where = new Map<string, string[]>();
  const add = (name: string, at: string) => where.set(name, [...(where.get(name) ?? []), at]);
  for (const f of dashboardFiles()) {
    const d = JSON.parse(f.json) as Built;
    for (const panel of d.panels.filter((x) => x.type !== "row"))
      for (const t of panel.targets ?? []) for (const name of metricNames(t.expr ?? "")) add(name, `${f.file} / ${panel.title}`);
    for (const v of d.templating?.list ?? []) {
      const q = typeof v.query === "string" ? v.query : (v.query as { query?: string } | undefined)?.query;
      const name = q ? variableMetric(q) : undefined;
      if (name) add(name, `${f.file} / variable ${v.name}`);
    }
  }
  for (const own of PROMETHEUS_OWN_SERIES) where.delete(own);
  return where;
}

async function scrape(service: string): Promise<string> {
  const r = await fetch(`${p.urls.get(service)}/metrics`, { signal: AbortSignal.timeout(30_000) });
  expect(r.status, `${service} /metrics`).toBe(200);
  return r.text();
}
const scrapeAll = async () => new Map(await Promise.all([...p.urls.keys()].map(async (s) => [s, await scrape(s)] as const)));

beforeAll(async () => {
  p = await startPlatform(srv.env, { OM_OUTBOX_INTERVAL_MS: "50", TE_OUTBOX_INTERVAL_MS: "50" }, { defaultMetrics: true });
}, 600_000);
afterAll(async () => {
  await p?.close();
}, 120_000);

describe("dashboards against the fleet's /metrics", () => {
  it("every metric a dashboard reads is exported by at least one service", async () => {
    const wanted = dashboardMetrics();
    expect(wanted.size).toBeGreaterThan(20);
    const texts = await scrapeAll();
    expect(texts.size).toBe(p.services.size);
    const exporters = new Map<string, string[]>();
    for (const [service, text] of texts) for (const name of exportedSeries(text)) exporters.set(name, [...(exporters.get(name) ?? []), service]);
    const missing = [...wanted].filter(([name]) => !exporters.has(name)).map(([name, at]) => `${name} (read by ${at.join("; ")})`);
    expect(missing, "metrics a dashboard reads that no service exports").toEqual([]);
    // The trading metrics come from the services that own them.
    expect(exporters.get("om_fill_latency_seconds_bucket")).toEqual(["order-management"]);
    expect(exporters.get("om_order_rejections_total")).toEqual(["order-management"]);
    for (const g of ["portfolio_realized_pnl", "portfolio_fees", "portfolio_open_positions"]) expect(exporters.get(g), g).toEqual(["portfolio-manager"]);
    expect(exporters.get("kafka_consumer_lag")).toEqual(expect.arrayContaining(["order-management", "trading-engine", "portfolio-manager"]));
  });

  it("a refused order, two fills and the portfolio they make show as samples of the trading metrics", async () => {
    const om = p.urls.get("order-management")!;
    const symbol = `M${randomBytes(4).toString("hex").toUpperCase()}USDT`; // this test's own market: other files share the broker
    const user = randomUUID();
    const as = { "x-user-id": user, "x-user-role": "trader", "x-auth-method": "jwt" };
    const redis = new Redis(p.env.DRAGONFLY_URL);
    const producer = new kafkajs.Kafka({ brokers: p.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).producer();
    await producer.connect();
    try {
      /** Last price for pre-trade risk, and a closed 1m bar the engine has applied (its price for market orders). */
      const market = async (openTime: number, price: string) => {
        await redis.set(lastPriceKey(symbol), price);
        const bar = { symbol, interval: "1m", openTime, closeTime: openTime + 59_999, open: price, high: price, low: price, close: price, volume: "1000" };
        await producer.send({ topic: TOPICS.candles, messages: [{ key: symbol, value: JSON.stringify(bar) }] });
        await waitUntil(`bar ${openTime} applied`, async () => Number((await p.pool.query("SELECT open_time FROM te_last_bar WHERE symbol = $1", [symbol])).rows[0]?.open_time) === openTime, WAIT_MS);
      };
      const fill = async (side: "buy" | "sell", quantity: string) => {
        const r = await http("POST", `${om}/`, { body: { symbol, side, type: "market", quantity }, headers: as });
        expect(r.status, JSON.stringify(r.body)).toBe(201);
        expect(r.body.status).toBe("accepted");
        await waitUntil(`${side} filled`, async () => (await http("GET", `${om}/${r.body.orderId}`, { headers: as })).body.status === "filled", WAIT_MS);
      };

      // No last price for this one: pre-trade risk refuses it.
      const refused = await http("POST", `${om}/`, { body: { symbol: `N${symbol}`, side: "buy", type: "market", quantity: "1" }, headers: as });
      expect(refused.body.rejectReason).toBe("NO_REFERENCE_PRICE");
      const t0 = Date.UTC(2026, 0, 1, 0, 0);
      await market(t0, "100");
      await fill("buy", "2");
      await market(t0 + 60_000, "110");
      await fill("sell", "1");

      // portfolio-manager applies the fills from Kafka on its own time: wait for its gauges.
      const pm = await waitUntil(
        "portfolio-manager applied both fills",
        async () => {
          const text = await scrape("portfolio-manager");
          const pnl = parseSamples(text, "portfolio_realized_pnl").find((s) => s.labels.symbol === symbol);
          return pnl && pnl.value > 0 ? text : undefined;
        },
        WAIT_MS,
      );
      const mine = (name: string) => parseSamples(pm, name).find((s) => s.labels.symbol === symbol);
      expect(mine("portfolio_realized_pnl")!.value).toBeGreaterThan(5); // bought at ~100, sold at ~110, minus slippage
      expect(mine("portfolio_fees")!.value).toBeGreaterThan(0);
      expect(parseSamples(pm, "portfolio_open_positions")[0].value).toBeGreaterThanOrEqual(1);

      const omText = await scrape("order-management");
      expect(parseSamples(omText, "om_order_rejections_total").find((s) => s.labels.reason === "NO_REFERENCE_PRICE")!.value).toBeGreaterThanOrEqual(1);
      expect(parseSamples(omText, "om_fill_latency_seconds_count")[0].value).toBeGreaterThanOrEqual(2);
      const inf = parseSamples(omText, "om_fill_latency_seconds_bucket").find((s) => s.labels.le === "+Inf")!;
      expect(inf.value).toBeGreaterThanOrEqual(2);
      expect(parseSamples(omText, "om_fill_latency_seconds_sum")[0].value).toBeGreaterThan(0);

      // Every consumer reports its lag, labelled with its own group.
      const lag = async (service: string, group: string, topic: string) =>
        waitUntil(`${service} reports its lag on ${topic}`, async () => parseSamples(await scrape(service), "kafka_consumer_lag").find((s) => s.labels.group === group && s.labels.topic === topic), WAIT_MS);
      for (const [service, group, topic] of [
        ["trading-engine", p.env.TE_CONSUMER_GROUP, TOPICS.orders],
        ["order-management", p.env.OM_CONSUMER_GROUP, TOPICS.executions],
        ["portfolio-manager", p.env.PM_CONSUMER_GROUP, TOPICS.executions],
      ]) {
        const s = await lag(service, group, topic);
        expect(s.value, `${service} ${topic}`).toBeGreaterThanOrEqual(0);
        expect(s.labels.partition).toMatch(/^\d+$/);
      }
    } finally {
      await producer.disconnect().catch(() => undefined);
      redis.disconnect();
    }
  }, 900_000);
});
