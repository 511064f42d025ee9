/**
 * The pure parts of the trading metrics the dashboards read (no servers): order-management's
 * decisions and fill latency, portfolio-manager's scrape-time gauges, the kit's Kafka consumer lag.
 * The same metrics from the real services: tests/services/fleet-metrics.test.ts.
 */
import { describe, expect, it } from "vitest";
import { createLogger } from "../../services/src/kit/app";
import { ConsumerLag, consumerLagGauge } from "../../services/src/kit/datastores/kafka-lag";
import { countDecision, createOrderMetrics, fillLatencySeconds } from "../../services/src/services/order-management/metrics";
import { portfolioTotals, type PortfolioTotals } from "../../services/src/services/portfolio-manager/domain";
import { registerPortfolioGauges } from "../../services/src/services/portfolio-manager/metrics";
import { RISK_REJECTIONS } from "../../services/src/trading/risk";
import { promClient } from "../harness/deps";

const { Registry } = promClient;
type Registry = InstanceType<typeof Registry>;

const silent = createLogger("metrics-test", "silent");
/** `name{labels} value` lines of one metric (HELP/TYPE left out). */
const samples = async (r: Registry, name: string) =>
  (await r.metrics()).split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

describe("order-management metrics", () => {
  it("counts every decision by outcome and each risk refusal by its reason; every reason starts at 0", async () => {
    const r = new Registry();
    const m = createOrderMetrics(r);
    for (const reason of RISK_REJECTIONS) expect(await samples(r, "om_order_rejections_total")).toContain(`om_order_rejections_total{reason="${reason}"} 0`);
    countDecision(m, { status: "accepted", reject_reason: null });
    countDecision(m, { status: "rejected", reject_reason: "POSITION_LIMIT_EXCEEDED" });
    countDecision(m, { status: "rejected", reject_reason: "POSITION_LIMIT_EXCEEDED" });
    expect(await samples(r, "om_orders_submitted_total")).toEqual(['om_orders_submitted_total{outcome="accepted"} 1', 'om_orders_submitted_total{outcome="rejected"} 2']);
    expect(await samples(r, "om_order_rejections_total")).toContain('om_order_rejections_total{reason="POSITION_LIMIT_EXCEEDED"} 2');
    expect((await samples(r, "om_order_rejections_total")).filter((l) => !l.endsWith(" 0"))).toHaveLength(1);
  });

  it("fill latency is the order's creation to the fill's update, never negative", () => {
    const created_at = new Date("2026-01-01T00:00:00.000Z");
    expect(fillLatencySeconds({ created_at, updated_at: new Date("2026-01-01T00:00:01.250Z") })).toBe(1.25);
    expect(fillLatencySeconds({ created_at, updated_at: created_at })).toBe(0);
    expect(fillLatencySeconds({ created_at, updated_at: new Date("2025-12-31T23:59:59.000Z") })).toBe(0);
  });

  it("exports the fill latency histogram's buckets, sum and count before any fill", async () => {
    const r = new Registry();
    createOrderMetrics(r).fillLatency.observe(0.3);
    const text = await r.metrics();
    expect(text).toContain("# TYPE om_fill_latency_seconds histogram");
    expect(text).toContain('om_fill_latency_seconds_bucket{le="0.5"} 1');
    expect(text).toContain('om_fill_latency_seconds_bucket{le="0.25"} 0');
    expect(text).toContain("om_fill_latency_seconds_count 1");
  });
});

describe("portfolio-manager gauges", () => {
  const totals: PortfolioTotals = portfolioTotals([
    { symbol: "BTCUSDT", realized_pnl: "-12.5", fees: "0.75", open_positions: 2 },
    { symbol: "ETHUSDT", realized_pnl: "40", fees: "1.5", open_positions: 0 },
  ]);

  it("sums the per-symbol rows: figures as numbers, open positions over every symbol", () => {
    expect(totals).toEqual({
      bySymbol: [
        { symbol: "BTCUSDT", realizedPnl: -12.5, fees: 0.75 },
        { symbol: "ETHUSDT", realizedPnl: 40, fees: 1.5 },
      ],
      openPositions: 2,
    });
    expect(portfolioTotals([])).toEqual({ bySymbol: [], openPositions: 0 });
  });

  it("reads once per scrape for the three gauges and reports what the read returned", async () => {
    const r = new Registry();
    let reads = 0;
    registerPortfolioGauges(r, async () => (reads++, totals), silent);
    await r.metrics();
    expect(reads).toBe(1);
    expect(await samples(r, "portfolio_realized_pnl")).toEqual(['portfolio_realized_pnl{symbol="BTCUSDT"} -12.5', 'portfolio_realized_pnl{symbol="ETHUSDT"} 40']);
    expect(await samples(r, "portfolio_fees")).toEqual(['portfolio_fees{symbol="BTCUSDT"} 0.75', 'portfolio_fees{symbol="ETHUSDT"} 1.5']);
    expect(await samples(r, "portfolio_open_positions")).toEqual(["portfolio_open_positions 2"]);
  });

  it("a symbol that disappears from the read loses its series", async () => {
    const r = new Registry();
    let current = totals;
    registerPortfolioGauges(r, async () => current, silent);
    await r.metrics();
    current = { bySymbol: [totals.bySymbol[1]], openPositions: 0 };
    expect(await samples(r, "portfolio_fees")).toEqual(['portfolio_fees{symbol="ETHUSDT"} 1.5']);
    expect(await samples(r, "portfolio_open_positions")).toEqual(["portfolio_open_positions 0"]);
  });

  it("a failing or hanging read leaves the gauges empty for that scrape; /metrics still answers and the next scrape recovers", async () => {
    const r = new Registry();
    let mode: "fail" | "hang" | "ok" = "fail";
    registerPortfolioGauges(r, () => (mode === "fail" ? Promise.reject(new Error("connection refused")) : mode === "hang" ? new Promise<never>(() => undefined) : Promise.resolve(totals)), silent, 50);
    for (const m of ["fail", "hang"] as const) {
      mode = m;
      const text = await r.metrics();
      expect(text).toContain("# TYPE portfolio_open_positions gauge");
      for (const name of ["portfolio_realized_pnl", "portfolio_fees", "portfolio_open_positions"]) expect(await samples(r, name), `${m} ${name}`).toEqual([]);
    }
    mode = "ok";
    expect(await samples(r, "portfolio_open_positions")).toEqual(["portfolio_open_positions 2"]);
  });
});

describe("Kafka consumer lag (kit)", () => {
  it("one gauge per registry, whatever the number of consumers", () => {
    const r = new Registry();
    expect(consumerLagGauge(r)).toBe(consumerLagGauge(r));
  });

  it("sets the lag per partition after each batch, drops partitions lost in a rebalance and all of them on stop", async () => {
    const r = new Registry();
    const a = new ConsumerLag(consumerLagGauge(r), "te");
    const b = new ConsumerLag(consumerLagGauge(r), "pm");
    a.batchProcessed({ topic: "trading.orders", partition: 0, offsetLag: "7" });
    a.batchProcessed({ topic: "trading.orders", partition: 1, offsetLag: "0" });
    a.batchProcessed({ topic: "trading.orders", partition: 0, offsetLag: "3" });
    b.batchProcessed({ topic: "trading.executions", partition: 2, offsetLag: "-1" }); // caught up past a control record
    expect(await samples(r, "kafka_consumer_lag")).toEqual([
      'kafka_consumer_lag{group="te",topic="trading.orders",partition="0"} 3',
      'kafka_consumer_lag{group="te",topic="trading.orders",partition="1"} 0',
      'kafka_consumer_lag{group="pm",topic="trading.executions",partition="2"} 0',
    ]);
    a.assigned({ "trading.orders": [1], "trading.candles": [0] });
    expect(await samples(r, "kafka_consumer_lag")).toEqual([
      'kafka_consumer_lag{group="te",topic="trading.orders",partition="1"} 0',
      'kafka_consumer_lag{group="pm",topic="trading.executions",partition="2"} 0',
    ]);
    a.stopped();
    expect(await samples(r, "kafka_consumer_lag")).toEqual(['kafka_consumer_lag{group="pm",topic="trading.executions",partition="2"} 0']);
  });

  it("refreshed from the broker: each assigned partition's high watermark less the further of the committed offset and what was processed", async () => {
    const r = new Registry();
    const lag = new ConsumerLag(consumerLagGauge(r), "te");
    const highs: Record<number, number> = { 0: 20, 1: 12, 2: 7, 3: 100 };
    let duringHighs = () => {};
    const broker = {
      committed: async (group: string, topics: string[]) => {
        expect([group, topics]).toEqual(["te", ["trading.orders"]]);
        return [{ topic: "trading.orders", partition: 0, offset: 5 }, { topic: "trading.orders", partition: 1, offset: 8 }, { topic: "trading.orders", partition: 2, offset: -1 }];
      },
      watermarks: async (topic: string) => {
        duringHighs();
        return Object.entries(highs).map(([p, high]) => (expect(topic).toBe("trading.orders"), { partition: Number(p), low: 3, high }));
      },
    };
    await lag.refresh(broker); // nothing assigned yet: nothing asked, nothing set
    expect(await samples(r, "kafka_consumer_lag")).toEqual([]);
    lag.assigned({ "trading.orders": [0, 1, 2] });
    lag.batchProcessed({ topic: "trading.orders", partition: 1, offsetLag: "0", lastOffset: "9" }); // processed up to 9, committed only up to 7
    await lag.refresh(broker);
    expect(await samples(r, "kafka_consumer_lag")).toEqual([
      'kafka_consumer_lag{group="te",topic="trading.orders",partition="1"} 2', // 12 - 10: not 12 - 8
      'kafka_consumer_lag{group="te",topic="trading.orders",partition="0"} 15', // no batch since the assignment: a series all the same
    ]); // partition 2: never committed, nothing processed, subscribed from the latest offset (where it started is unknown); 3: not assigned
    lag.subscribed(["trading.orders", /x/], true); // from the beginning: it starts at the low watermark
    await lag.refresh(broker);
    expect(await samples(r, "kafka_consumer_lag")).toContain('kafka_consumer_lag{group="te",topic="trading.orders",partition="2"} 4'); // 7 - 3
    lag.subscribed(["trading.orders"], false);
    // The handler keeps failing: no batch ends, the partition fills up, the lag grows (before: it stayed at the last batch's 0).
    highs[1] = 1_500;
    await lag.refresh(broker);
    expect(await samples(r, "kafka_consumer_lag")).toContain('kafka_consumer_lag{group="te",topic="trading.orders",partition="1"} 1490');
    // A rebalance while the broker answers: the partition lost is not set again.
    duringHighs = () => lag.assigned({ "trading.orders": [1] });
    highs[0] = 50;
    await lag.refresh(broker);
    expect(await samples(r, "kafka_consumer_lag")).toEqual(['kafka_consumer_lag{group="te",topic="trading.orders",partition="1"} 1490']);
    lag.stopped();
    await lag.refresh(broker);
    expect(await samples(r, "kafka_consumer_lag")).toEqual([]);
  });
});
