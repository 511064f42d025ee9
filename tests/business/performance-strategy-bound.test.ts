/**
 * performance-analytics bounds a user's strategy series (data.ts dayFlows, on real ClickHouse 18.16):
 * a strategy label is any client order id prefix, so one user could make every pass build, write and
 * answer a series per label (millions at the order rate limit). A user's labels keep a series of
 * their own in the order of their first fill (ties by name), up to PERF_MAX_STRATEGIES_PER_USER; the
 * later ones are summed into one series, "~other"; the total is unchanged, and a new label does not
 * reshuffle the series already there.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createService } from "../../services/src/kit";
import type { ClickHouseKitClient } from "../../services/src/kit/datastores";
import performanceAnalytics from "../../services/src/services/performance-analytics";
import { PerformanceStore } from "../../services/src/services/performance-analytics/data";
import { dayOf, MAX_STRATEGIES_PER_USER, OTHER, type DailyPoint } from "../../services/src/services/performance-analytics/domain";
import { rollupPage, runRollup, TOTAL } from "../../services/src/services/performance-analytics/rollup";
import { RollupWatermarks } from "../../services/src/services/performance-analytics/watermark";
import { migratedClickHouse } from "../helpers/schemas";

const srv = useServers("clickhouse");
const run = randomBytes(3).toString("hex");
const SYMBOL = `BND${run}`;
let ch: ClickHouseKitClient;

beforeAll(async () => {
  ch = await migratedClickHouse(srv.env);
}, 120_000);
afterAll(async () => {
  await ch?.close();
});

const chTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace("T", " ");
/** One order per fill; `label` undefined: no order event (the fill counts as manual). */
async function trade(user: string, rows: { order: string; label?: string; side: "buy" | "sell"; qty: number; price: number; at: string }[]) {
  await ch.insert("pa_fills", rows.map((r) => ({ fill_id: `${r.order}:1`, order_id: r.order, user_id: user, symbol: SYMBOL, side: r.side, quantity: r.qty, price: r.price, fee: 0.5, ts_ms: Date.parse(r.at), at: chTime(Date.parse(r.at)) })));
  const labelled = rows.filter((r) => r.label !== undefined);
  if (labelled.length) await ch.insert("pa_order_strategies", labelled.map((r) => ({ order_id: r.order, user_id: user, strategy: r.label })));
}
const hours = (h: number) => new Date(Date.parse("2021-05-01T00:00:00Z") + h * 3_600_000).toISOString();
const seriesOf = (m: Map<string, DailyPoint[]>) => Object.fromEntries(m);

describe("strategy series per user are bounded", () => {
  it("labels beyond the first N by first fill (ties by name; manual ranked like any label) are one series", async () => {
    const user = randomUUID();
    await trade(user, [
      { order: `t-${run}-1`, label: "b", side: "buy", qty: 1, price: 100, at: hours(0) },
      { order: `t-${run}-2`, label: "a", side: "buy", qty: 2, price: 100, at: hours(0) },
      { order: `t-${run}-3`, label: "c", side: "buy", qty: 1, price: 101, at: hours(1) },
      { order: `t-${run}-4`, side: "buy", qty: 1, price: 102, at: hours(2) },
      { order: `t-${run}-5`, label: "d", side: "buy", qty: 3, price: 103, at: hours(3) },
      { order: `t-${run}-6`, label: "a", side: "sell", qty: 1, price: 104, at: hours(30) },
      { order: `t-${run}-7`, label: "d", side: "sell", qty: 1, price: 105, at: hours(31) },
    ]);
    const store = new PerformanceStore(ch);
    const names = async (n: number) => [...new Set((await store.dayFlows([user], n)).map((f) => f.strategy))].sort();
    expect(await names(3)).toEqual(["a", "b", "c", OTHER].sort());
    expect(await names(4)).toEqual(["a", "b", "c", "manual", OTHER].sort());
    expect(await names(5)).toEqual(["a", "b", "c", "d", "manual"]);
    expect(await names(1)).toEqual(["a", OTHER].sort());
    // The folded series is the sum of the labels folded (manual and d): per symbol and day, as one label would be.
    const other = (await store.dayFlows([user], 3)).filter((f) => f.strategy === OTHER).sort((x, y) => x.day.localeCompare(y.day));
    expect(other).toMatchObject([
      { day: "2021-05-01", quantity: 4, trades: 2, lastPrice: 103, lastFillId: `t-${run}-5:1` },
      { day: "2021-05-02", quantity: -1, trades: 1, lastPrice: 105 },
    ]);
    expect(other[0].cash).toBeCloseTo(-102 - 309 - 1, 10);
  }, 60_000);

  it("a pass writes at most N + 1 strategy series for a user with more labels, the same total, and a new label does not reshuffle them", async () => {
    const user = randomUUID();
    const n = MAX_STRATEGIES_PER_USER;
    const labels = Array.from({ length: n + 3 }, (_, i) => `s${String(i).padStart(2, "0")}`);
    await trade(user, labels.flatMap((label, i) => [
      { order: `p-${run}-${i}-1`, label, side: "buy" as const, qty: 1 + (i % 3), price: 100 + i, at: hours(i) },
      { order: `p-${run}-${i}-2`, label, side: "sell" as const, qty: 1, price: 101 + i, at: hours(48 + i) },
    ]));
    const store = new PerformanceStore(ch);
    const watermarks = new RollupWatermarks(ch);
    const name = `perf-bound-${run}`;
    // What the pass must write: the unbounded flows with the labels after the first n summed as one.
    const expected = async () => {
      const flows = (await store.dayFlows([user], 1000)).map((f) => ({ ...f, strategy: labels.indexOf(f.strategy) < n ? f.strategy : OTHER }));
      const folded = new Map<string, typeof flows>();
      for (const f of flows) folded.set(`${f.strategy}\u0000${f.symbol}\u0000${f.day}`, [...(folded.get(`${f.strategy}\u0000${f.symbol}\u0000${f.day}`) ?? []), f]);
      const merged = [...folded.values()].map((g) => g.reduce((a, f) => ({ ...a, quantity: a.quantity + f.quantity, cash: a.cash + f.cash, fees: a.fees + f.fees, trades: a.trades + f.trades, ...(f.lastTs > a.lastTs && { lastPrice: f.lastPrice, lastTs: f.lastTs, lastFillId: f.lastFillId }) })));
      const page = await rollupPage(store, merged, { capital: 10_000, timeframe: "1m", today: dayOf(Date.now()) });
      return Object.fromEntries((page.byUser.get(user) ?? []).map((s) => [s.strategy, s.points]));
    };
    const unboundedTotal = async () => (await rollupPage(store, await store.dayFlows([user], 1000), { capital: 10_000, timeframe: "1m", today: dayOf(Date.now()) })).byUser.get(user)!.find((s) => s.strategy === TOTAL)!.points;

    expect(await runRollup(store, { capital: 10_000, timeframe: "1m", name, watermarks, overlapSeconds: 0, pageUsers: 50 })).toMatchObject({ ran: true });
    let written = seriesOf(await store.daily(user));
    expect(Object.keys(written).filter((s) => s !== TOTAL).sort()).toEqual([...labels.slice(0, n), OTHER].sort());
    expect(written).toEqual(await expected());
    expect(written[TOTAL]).toEqual(await unboundedTotal());
    // A folded label has no series of its own (GET /daily?strategy= of it answers an empty one).
    expect(seriesOf(await store.daily(user, labels[n + 1]))).toEqual({});
    expect((await store.daily(user, OTHER)).get(OTHER)).toEqual(written[OTHER]);

    // A new label, first filled after the others (and first by name): it joins the folded series; the kept ones stay.
    await trade(user, [{ order: `p-${run}-new`, label: "AAA", side: "buy", qty: 1, price: 99, at: hours(60) }]);
    labels.push("AAA");
    await runRollup(store, { capital: 10_000, timeframe: "1m", name, watermarks, overlapSeconds: 0, pageUsers: 50, full: true });
    written = seriesOf(await store.daily(user));
    expect(Object.keys(written).filter((s) => s !== TOTAL).sort()).toEqual([...labels.slice(0, n), OTHER].sort());
    expect(written).toEqual(await expected());
    expect(written[TOTAL]).toEqual(await unboundedTotal());

    // Another bound regroups every user's series: the pass after the change is a full one, under the new bound.
    expect(await runRollup(store, { capital: 10_000, timeframe: "1m", name, watermarks, overlapSeconds: 0, pageUsers: 50, maxStrategies: 5 })).toMatchObject({ ran: true, mode: "full" });
    expect([...(await store.daily(user)).keys()].filter((s) => s !== TOTAL).sort()).toEqual([...labels.slice(0, 5), OTHER].sort());
    expect((await store.daily(user)).get(TOTAL)).toEqual(await unboundedTotal());
  }, 120_000);

  it("PERF_MAX_STRATEGIES_PER_USER is validated: a config error names it", async () => {
    for (const bad of ["0", "-1", "2.5", "many", "1001"]) {
      await expect(createService(performanceAnalytics, { env: { ...srv.env, KAFKA_BROKERS: "127.0.0.1:1", LOG_LEVEL: "silent", PERF_MAX_STRATEGIES_PER_USER: bad }, defaultMetrics: false }), bad).rejects.toThrow(/^Invalid configuration of performance-analytics: PERF_MAX_STRATEGIES_PER_USER /);
    }
  });
});
