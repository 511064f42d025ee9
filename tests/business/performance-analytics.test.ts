/**
 * performance-analytics on real ClickHouse 18.16 and Kafka: fills and orders published to the real
 * topics, candles written to `market_candles` as data-bridge does, the rollup run, and the
 * figures (equity, returns, Sharpe, drawdown, exposure) compared with values worked out by hand
 * below. Dated 2021 so the shared broker's other traffic cannot touch these users.
 * Two replicas share the rollup: only the leader of their rollup group runs a pass, so each pass
 * writes one version of each user's series; the rollup takes users a page at a time
 * (PERF_ROLLUP_PAGE_USERS=1 here) and reads one summed row per user, strategy, symbol and day.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { kafkajs, type KafkaJs } from "../harness";
import { useServersWith } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import type { ClickHouseKitClient } from "../../services/src/kit/datastores";
import { ensureKafkaTopics } from "../../services/src/migrations";
import performanceAnalytics from "../../services/src/services/performance-analytics";
import { PerformanceStore } from "../../services/src/services/performance-analytics/data";
import { dailyCurve, sharpe, strategyOf, type PerfFill } from "../../services/src/services/performance-analytics/domain";
import { waitUntil } from "../trading/e2e-helpers";
import { migratedClickHouse } from "../helpers/schemas";

const srv = useServersWith({ privateKafka: true }, "clickhouse", "kafka");
const run = randomBytes(3).toString("hex");
let svc: Service<any>;
let svc2: Service<any> | undefined;
let producer: KafkaJs.Producer;
let kafka: KafkaJs.Kafka;
let ch: ClickHouseKitClient;
let env: Record<string, string>;
const SYMBOL = "XYZUSDT";
const userId = randomUUID();
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };

beforeAll(async () => {
  env = { ...srv.env, LOG_LEVEL: "silent", PERF_CONSUMER_GROUP: `perf-${run}`, PERF_CAPITAL_BASE: "10000", PERF_ROLLUP_INTERVAL_MS: "0", PERF_ROLLUP_PAGE_USERS: "1", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500" };
  ch = await migratedClickHouse(env);
  // Daily closes 100, 110, 99, 121 (the 23:59 candle); the 00:00 candle and the 5m series must not count.
  const closes = [100, 110, 99, 121];
  const candle = (day: number, hhmm: string, close: number, timeframe = "1m") => ({
    symbol: SYMBOL, timeframe, open_time: `2021-03-0${day} ${hhmm}:00`, open: close, high: close, low: close, close, volume: 1, trades: 1, source: "test",
  });
  await ch.insert("market_candles", closes.flatMap((c, i) => [candle(i + 1, "00:00", 1), candle(i + 1, "23:59", c), candle(i + 1, "23:55", 5000, "5m")]));
  kafka = new kafkajs.Kafka({ brokers: env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
  const a = kafka.admin();
  await a.connect();
  await ensureKafkaTopics(a);
  await a.disconnect();
  producer = kafka.producer();
  await producer.connect();
  svc = await createService(performanceAnalytics, { env, defaultMetrics: false });
  await svc.app.ready();
}, 240_000);

afterAll(async () => {
  await producer?.disconnect();
  await svc2?.close();
  await svc?.close();
  await ch?.close();
});

const order = (orderId: string, clientOrderId: string) => ({
  eventId: `${orderId}:new`, type: "order.new", ts: 0,
  order: { orderId, clientOrderId, userId, symbol: SYMBOL, side: "buy", type: "market", quantity: "1", status: "new", filledQuantity: "0", avgFillPrice: null, fees: "0", rejectReason: null, rejectMessage: null, lastPrice: null, createdAt: "", updatedAt: "" },
});
const fill = (orderId: string, seq: number, side: string, quantity: string, price: string, fee: string, iso: string) => ({
  eventId: `${orderId}:fill:${seq}`, type: "fill",
  fill: { fillId: `${orderId}:${seq}`, orderId, userId, symbol: SYMBOL, side, quantity, price, fee, liquidity: "taker", ts: Date.parse(iso) },
});

/** Sample-stdev Sharpe, annualised with sqrt(365), of hand-listed daily returns. */
function expectedSharpe(r: number[]): number {
  const mean = r.reduce((a, b) => a + b, 0) / r.length;
  const sd = Math.sqrt(r.reduce((a, x) => a + (x - mean) ** 2, 0) / (r.length - 1));
  return (mean / sd) * Math.sqrt(365);
}

/** POST /rollup on one replica: ran is false when the other replica leads the rollup. */
async function rollupOn(s: Service<any>, full = false): Promise<{ ran: boolean; mode?: string; users: number; groups: number; points: number }> {
  const r = await s.app.inject({ method: "POST", url: `/rollup${full ? "?full=true" : ""}`, headers: admin });
  expect(r.statusCode).toBe(200);
  return r.json();
}

describe("performance-analytics", () => {
  it("marks fills to daily closes: equity, returns, Sharpe, drawdown and exposure per strategy and overall", async () => {
    const [o1, o2, o3] = [`o1-${run}`, `o2-${run}`, `o3-${run}`];
    const msgs = [
      { topic: "trading.orders", key: o1, value: order(o1, "momo:1") },
      { topic: "trading.orders", key: o2, value: order(o2, "momo:2") },
      { topic: "trading.orders", key: o3, value: order(o3, o3) }, // no prefix: manual
      { topic: "trading.executions", key: o1, value: fill(o1, 1, "buy", "10", "100", "1", "2021-03-01T10:00:00Z") },
      { topic: "trading.executions", key: o1, value: fill(o1, 1, "buy", "10", "100", "1", "2021-03-01T10:00:00Z") }, // redelivered
      { topic: "trading.executions", key: o3, value: fill(o3, 1, "buy", "1", "110", "0", "2021-03-02T12:00:00Z") },
      { topic: "trading.executions", key: o2, value: fill(o2, 1, "sell", "5", "99", "0.5", "2021-03-03T15:00:00Z") },
      { topic: "trading.executions", key: "x", value: { eventId: "bad", type: "fill", fill: { fillId: "f", userId, price: "abc" } } }, // malformed: skipped
    ];
    for (const m of msgs) await producer.send({ topic: m.topic, messages: [{ key: m.key, value: JSON.stringify(m.value) }] });

    const summary = await waitUntil("rolled up", async () => {
      expect((await svc.app.inject({ method: "POST", url: "/rollup", headers: admin })).statusCode).toBe(200);
      const s = (await svc.app.inject({ method: "GET", url: `/users/${encodeURIComponent(userId)}`, headers: admin })).json();
      // Orders and fills arrive on two topics: a fill whose order event is not in yet counts as manual until the next rollup.
      const trades = Object.fromEntries((s.strategies ?? []).map((x: any) => [x.strategy, x.trades]));
      return s.total?.trades === 3 && trades.momo === 2 && trades.manual === 1 ? s : undefined;
    }, 120_000, 1000);

    // momo, capital 10 000: d1 buy 10 @ 100 fee 1 -> cash -1001, value 1000, equity 9999; d2 value 1100 -> 10 099;
    // d3 sell 5 @ 99 fee 0.5 -> cash -506.5, value 495 -> 9988.5; d4 value 5 x 121 = 605 -> 10 098.5.
    const momo = [9999, 10099, 9988.5, 10098.5];
    // overall adds manual's d2 buy 1 @ 110: d2 cash -1111, value 11 x 110 -> 10 099; d3 cash -616.5, value 6 x 99 -> 9977.5; d4 6 x 121 -> 10 109.5.
    const total = [9999, 10099, 9977.5, 10109.5];
    const returns = (eq: number[]) => eq.map((e, i) => e / (i ? eq[i - 1] : 10_000) - 1);
    const byName = Object.fromEntries(summary.strategies.map((s: any) => [s.strategy, s]));
    expect(summary.capitalBase).toBe(10_000);
    expect(byName.momo).toMatchObject({ from: "2021-03-01", to: "2021-03-04", days: 4, endEquity: 10098.5, totalPnl: 98.5, trades: 2, fees: 1.5, exposure: 605 });
    expect(byName.momo.totalReturn).toBeCloseTo(0.00985, 10);
    expect(byName.momo.maxDrawdown).toBeCloseTo((10099 - 9988.5) / 10099, 10);
    expect(byName.momo.sharpe).toBeCloseTo(expectedSharpe(returns(momo)), 6);
    expect(byName.momo.avgExposure).toBeCloseTo((1000 + 1100 + 495 + 605) / 4, 8);
    // manual from d2: equity 10 000, 9989, 10 011.
    expect(byName.manual).toMatchObject({ from: "2021-03-02", days: 3, endEquity: 10011, totalPnl: 11, trades: 1, exposure: 121 });
    expect(byName.manual.sharpe).toBeCloseTo(expectedSharpe(returns([10000, 9989, 10011])), 6);
    expect(summary.total).toMatchObject({ strategy: "*", days: 4, endEquity: 10109.5, totalPnl: 109.5, trades: 3, exposure: 726 });
    expect(summary.total.maxDrawdown).toBeCloseTo((10099 - 9977.5) / 10099, 10);
    expect(summary.total.sharpe).toBeCloseTo(expectedSharpe(returns(total)), 6);

    // The trader sees the same through their own endpoints.
    const me = { "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" };
    const daily = (await svc.app.inject({ method: "GET", url: "/daily?strategy=momo", headers: me })).json().daily;
    expect(daily.map((d: any) => d.equity)).toEqual(momo);
    expect(daily.map((d: any) => d.dailyReturn).every((r: number, i: number) => Math.abs(r - returns(momo)[i]) < 1e-12)).toBe(true);
    expect((await svc.app.inject({ method: "GET", url: "/", headers: me })).json().total.endEquity).toBe(10109.5);
    // A second rollup changes nothing (new version, same figures).
    await svc.app.inject({ method: "POST", url: "/rollup", headers: admin });
    expect((await svc.app.inject({ method: "GET", url: "/daily", headers: me })).json().daily.map((d: any) => d.equity)).toEqual(total);
  }, 180_000);

  it("POST /rollup?full=true during an incremental pass runs a full pass after it, not the running pass's answer", async () => {
    const [running, full] = await Promise.all([rollupOn(svc), rollupOn(svc, true)]);
    expect(running).toMatchObject({ ran: true, mode: "incremental" });
    expect(full).toMatchObject({ ran: true, mode: "full" });
    // And a plain call during a full pass shares it.
    const [fullAgain, joined] = await Promise.all([rollupOn(svc, true), rollupOn(svc)]);
    expect([fullAgain, joined]).toMatchObject([{ mode: "full" }, { mode: "full" }]);
  }, 300_000); // four passes; 31 s on a quiet CI, over 120 s with six other suites beside it (load 20, session 40)

  it("two replicas: only the rollup group's leader runs a pass, one version of each user's series per pass, same figures", async () => {
    svc2 = await createService(performanceAnalytics, { env, defaultMetrics: false });
    await svc2.app.ready();
    const replicas = [svc, svc2];
    const admin2 = kafka.admin();
    await admin2.connect();
    try {
      await waitUntil("both replicas in the rollup group", async () => {
        const g = (await admin2.describeGroups([`perf-${run}-rollup`])).groups[0];
        return g.state === "Stable" && g.members.length === 2;
      }, 60_000, 250);
    } finally {
      await admin2.disconnect();
    }
    await waitUntil("one leader", async () => (await Promise.all(replicas.map((r) => rollupOn(r)))).filter((r) => r.ran).length === 1, 30_000, 250);
    // Every write of this user's series, by either replica (both use the same store class).
    const writes = vi.spyOn(PerformanceStore.prototype, "writeDaily");
    const rounds = [];
    let calls: Parameters<PerformanceStore["writeDaily"]>[] = [];
    try {
      // Full passes: each writes every user (an incremental one only those changed since the last).
      for (let i = 0; i < 3; i++) rounds.push(await Promise.all(replicas.map((r) => rollupOn(r, true))));
      calls = [...writes.mock.calls];
    } finally {
      writes.mockRestore();
    }
    // Every round: the leader ran, the other replica did nothing (the same one leads throughout).
    for (const r of rounds) expect(r.map((x) => x.ran).sort()).toEqual([false, true]);
    expect(new Set(rounds.map((r) => r.findIndex((x) => x.ran))).size).toBe(1);
    // One write of the user's series per round: no replica competed with the leader.
    const versions = calls.filter(([u]) => u === userId).map(([, , version]) => version);
    expect(versions).toHaveLength(3);
    expect(new Set(versions).size).toBe(3);
    // Both replicas answer the same figures (the ones worked out by hand above).
    const me = { "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" };
    for (const s of replicas) expect((await s.app.inject({ method: "GET", url: "/daily", headers: me })).json().daily.map((d: any) => d.equity)).toEqual([9999, 10099, 9977.5, 10109.5]);
  }, 180_000);

  it("bounded memory: a user's fills are read as one summed row per strategy, symbol and day, with the same curve", async () => {
    const heavy = randomUUID();
    const fills: PerfFill[] = Array.from({ length: 500 }, (_, i) => ({
      fillId: `h-${run}-${i}`, symbol: SYMBOL, side: i % 3 === 0 ? "sell" : "buy", quantity: 1 + (i % 7), price: 95 + (i % 11), fee: 0.25, tsMs: Date.parse("2021-03-02T00:00:00Z") + i * 60_000,
    }));
    await ch.insert("pa_fills", fills.map((f) => ({ fill_id: f.fillId, order_id: `ho-${run}`, user_id: heavy, symbol: f.symbol, side: f.side, quantity: f.quantity, price: f.price, fee: f.fee, ts_ms: f.tsMs, at: new Date(f.tsMs).toISOString().slice(0, 19).replace("T", " ") })));
    const store = new PerformanceStore(ch);
    const flows = await store.dayFlows([heavy]);
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ strategy: "manual", day: "2021-03-02", trades: 500, lastFillId: `h-${run}-499`, lastPrice: fills[499].price });
    await waitUntil("heavy user rolled up", async () => (await Promise.all([svc, svc2!].map((r) => rollupOn(r)))).some((r) => r.ran));
    const me = { "x-user-id": heavy, "x-user-role": "trader", "x-auth-method": "jwt" };
    const daily = (await svc.app.inject({ method: "GET", url: "/daily", headers: me })).json().daily;
    const closes = new Map([[SYMBOL, new Map([["2021-03-01", 100], ["2021-03-02", 110], ["2021-03-03", 99], ["2021-03-04", 121]])]]);
    expect(daily).toEqual(dailyCurve(fills, closes, 10_000, "2021-03-04"));
  }, 120_000);

  it("admin only where it must be; bad query fields named", async () => {
    const trader = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    expect((await svc.app.inject({ method: "POST", url: "/rollup", headers: trader })).statusCode).toBe(403);
    expect((await svc.app.inject({ method: "GET", url: `/users/${userId}`, headers: trader })).statusCode).toBe(403);
    // Not a user id (a UUID in lower case): refused for what it is, whoever asks.
    for (const id of ["x", userId.toUpperCase()]) {
      const r = await svc.app.inject({ method: "GET", url: `/users/${id}`, headers: admin });
      expect(r.statusCode, id).toBe(400);
      expect(r.json().error.field, id).toBe("userId");
    }
    const bad = await svc.app.inject({ method: "GET", url: "/daily?strategy=a%20b", headers: trader });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.field).toBe("strategy");
    const badFull = await svc.app.inject({ method: "POST", url: "/rollup?full=maybe", headers: admin });
    expect(badFull.statusCode).toBe(400);
    expect(badFull.json().error.field).toBe("full");
    expect((await svc.app.inject({ method: "GET", url: "/", headers: trader })).json()).toMatchObject({ total: null, strategies: [] });
    // The series of the labels beyond PERF_MAX_STRATEGIES_PER_USER is asked by its name (none here: empty).
    expect((await svc.app.inject({ method: "GET", url: "/daily?strategy=~other", headers: trader })).json()).toMatchObject({ strategy: "~other", daily: [] });
  });

  it("domain: strategy prefixes, no fills, flat returns", () => {
    expect([strategyOf("momo:1"), strategyOf("abc"), strategyOf(null), strategyOf(":x"), strategyOf("a b:c")]).toEqual(["momo", "manual", "manual", "manual", "manual"]);
    expect(dailyCurve([], new Map(), 1000, "2021-01-01")).toEqual([]);
    expect(sharpe([0.01])).toBeNull();
    expect(sharpe([0.01, 0.01])).toBeNull();
  });
});
