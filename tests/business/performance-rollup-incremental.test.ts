/**
 * performance-analytics' rollup made incremental (rollup.ts, watermark.ts) on real ClickHouse 18.16:
 * after each batch of new inputs (fills, a late fill on a day already rolled up, an order's strategy
 * arriving after its fills, closes), a pass rewrites only the users whose inputs changed since the
 * watermark, and every user's series equals a full recompute from scratch (rollupPage over all of
 * the user's fills); a restarted replica takes up from the persisted watermark; a fill inserted
 * while a pass runs, after it read that user, is taken by the next pass; two passes racing
 * (a stale leader's pass still running while the new leader's starts) leave the same figures, also
 * when the stale leader's clock runs ahead and it stopped half way (versions come from ClickHouse's clock).
 * The passes run with no overlap, and each batch is inserted over a second before the pass it is
 * for, so that the users a pass writes are exactly the ones changed (second-granular inserted_at).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { useServers } from "../harness/shared";
import type { ClickHouseKitClient } from "../../services/src/kit/datastores";
import { PerformanceStore } from "../../services/src/services/performance-analytics/data";
import { dayOf, type DailyPoint } from "../../services/src/services/performance-analytics/domain";
import { RollupLeadershipLost, rollupPage, runRollup, type RollupOptions } from "../../services/src/services/performance-analytics/rollup";
import { RollupWatermarks } from "../../services/src/services/performance-analytics/watermark";
import { migratedClickHouse } from "../helpers/schemas";

const srv = useServers("clickhouse");
const run = randomBytes(3).toString("hex");
const [SA, SB] = [`INCA${run}`, `INCB${run}`];
const [A, B, C, D]: string[] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
const mine = [A, B, C, D];
const NAME = `perf-inc-${run}`;
let ch: ClickHouseKitClient;

beforeAll(async () => {
  ch = await migratedClickHouse(srv.env);
}, 120_000);
afterAll(async () => {
  await ch?.close();
});

const chTime = (iso: string) => iso.slice(0, 19).replace("T", " ");
async function fills(rows: { user: string; order: string; seq: number; symbol: string; side: "buy" | "sell"; qty: number; price: number; fee: number; at: string }[]) {
  await ch.insert("pa_fills", rows.map((r) => ({ fill_id: `${r.order}:${r.seq}`, order_id: r.order, user_id: r.user, symbol: r.symbol, side: r.side, quantity: r.qty, price: r.price, fee: r.fee, ts_ms: Date.parse(r.at), at: chTime(r.at) })));
}
const strategy = (user: string, order: string, name: string) => ch.insert("pa_order_strategies", [{ order_id: order, user_id: user, strategy: name }]);
const closes = (symbol: string, byDay: Record<string, number>) =>
  // Named columns, as data-bridge's insert: inserted_at is the server's now().
  ch.insert("market_candles", Object.entries(byDay).map(([day, close]) => ({ symbol, timeframe: "1m", open_time: `${day} 23:59:00`, open: close, high: close, low: close, close, volume: 1, trades: 1, source: "test" })));

type Series = Record<string, DailyPoint[]>;
/** A full recompute from scratch of the users' series (what a pass over every user writes). */
async function fromScratch(store: PerformanceStore, users: string[], capital = 10_000): Promise<Record<string, Series>> {
  const page = await rollupPage(store, await store.dayFlows(users), { capital, timeframe: "1m", today: dayOf(Date.now()) });
  return Object.fromEntries(users.map((u) => [u, Object.fromEntries((page.byUser.get(u) ?? []).map((s) => [s.strategy, s.points]))]));
}
/** What readers see now. */
async function stored(store: PerformanceStore, users: string[]): Promise<Record<string, Series>> {
  return Object.fromEntries(await Promise.all(users.map(async (u) => [u, Object.fromEntries(await store.daily(u))] as const)));
}

/** One pass; answers its result and which of this file's users it wrote. */
async function pass(store: PerformanceStore, watermarks: RollupWatermarks, extra: Partial<RollupOptions> = {}) {
  const writes = vi.spyOn(PerformanceStore.prototype, "writeDaily");
  try {
    const result = await runRollup(store, { capital: 10_000, timeframe: "1m", name: NAME, watermarks, overlapSeconds: 0, pageUsers: 50, ...extra });
    return { result, wrote: [...new Set(writes.mock.calls.map(([u]) => u).filter((u) => mine.includes(u)))].sort() };
  } finally {
    writes.mockRestore();
  }
}
const sorted = (...users: string[]) => [...users].sort();
/** Inserts are stamped to the second: the next pass must start in a later second than the batch. */
const nextSecond = () => sleep(1100);

describe("incremental rollup", () => {
  const store = () => new PerformanceStore(ch);

  it("after each batch a pass writes only the users changed since the watermark, and every series equals a full recompute", async () => {
    const s = store();
    const w = new RollupWatermarks(ch);
    // Batch 1. A: momo buys 10 SA on May 1; B: a manual buy of 2 SB on May 2.
    await fills([
      { user: A, order: `a1-${run}`, seq: 1, symbol: SA, side: "buy", qty: 10, price: 100, fee: 1, at: "2021-05-01T10:00:00Z" },
      { user: B, order: `b1-${run}`, seq: 1, symbol: SB, side: "buy", qty: 2, price: 50, fee: 0.1, at: "2021-05-02T09:00:00Z" },
    ]);
    await strategy(A, `a1-${run}`, "momo");
    await closes(SA, { "2021-05-01": 101, "2021-05-02": 104, "2021-05-03": 97 });
    await closes(SB, { "2021-05-01": 49, "2021-05-02": 51, "2021-05-03": 55 });
    await nextSecond();
    // No watermark under this name yet: every user.
    const p1 = await pass(s, w);
    expect(p1.result).toMatchObject({ ran: true, mode: "full" });
    expect(p1.wrote).toEqual(sorted(A, B));
    expect(await stored(s, [A, B])).toEqual(await fromScratch(s, [A, B]));

    // Batch 2. A: a fill that arrives late, on May 1 before A's first one, its order's strategy not
    // known yet (manual); a new close of SA on May 4. C: a first fill in SA. B: nothing (SB unchanged).
    await fills([
      { user: A, order: `a2-${run}`, seq: 1, symbol: SA, side: "sell", qty: 3, price: 99, fee: 0.5, at: "2021-05-01T08:00:00Z" },
      { user: C, order: `c1-${run}`, seq: 1, symbol: SA, side: "buy", qty: 1, price: 98, fee: 0, at: "2021-05-03T12:00:00Z" },
    ]);
    await closes(SA, { "2021-05-04": 120 });
    await nextSecond();
    const p2 = await pass(s, w);
    expect(p2.result).toMatchObject({ ran: true, mode: "incremental" });
    expect(p2.wrote).toEqual(sorted(A, C));
    const afterP2 = await stored(s, [A, B, C]);
    expect(Object.keys(afterP2[A]).sort()).toEqual(["*", "manual", "momo"]);
    expect(afterP2[A]["*"].map((p) => p.day)).toEqual(["2021-05-01", "2021-05-02", "2021-05-03", "2021-05-04"]);
    expect(afterP2).toEqual(await fromScratch(s, [A, B, C]));

    // Batch 3. A's late order turns out to be "swing" (its manual series goes); B sells on May 3.
    await strategy(A, `a2-${run}`, "swing");
    await fills([{ user: B, order: `b2-${run}`, seq: 1, symbol: SB, side: "sell", qty: 1, price: 54, fee: 0.1, at: "2021-05-03T16:00:00Z" }]);
    await nextSecond();
    const p3 = await pass(s, w);
    expect(p3.result.mode).toBe("incremental");
    expect(p3.wrote).toEqual(sorted(A, B));
    const afterP3 = await stored(s, [A, B, C]);
    expect(Object.keys(afterP3[A]).sort()).toEqual(["*", "momo", "swing"]);
    expect(afterP3).toEqual(await fromScratch(s, [A, B, C]));

    // Batch 4. Only a close: SB's of May 4 (B's curve moves a day on; A and C trade SA alone).
    await closes(SB, { "2021-05-04": 60 });
    await nextSecond();
    const p4 = await pass(s, w);
    expect(p4.wrote).toEqual([B]);
    const afterP4 = await stored(s, [A, B, C]);
    expect(afterP4[B]["*"].at(-1)?.day).toBe("2021-05-04");
    expect(afterP4).toEqual(await fromScratch(s, [A, B, C]));

    // Nothing new: a pass writes none of these users, and a full rebuild writes the same figures.
    await nextSecond();
    expect((await pass(s, w)).wrote).toEqual([]);
    const full = await pass(s, w, { full: true });
    expect(full.result.mode).toBe("full");
    expect(full.wrote).toEqual(sorted(A, B, C));
    expect(await stored(s, [A, B, C])).toEqual(afterP4);
  }, 120_000);

  it("a restarted replica takes up from the persisted watermark; another capital base rebuilds every user", async () => {
    // New objects: nothing held in memory from the passes above.
    const s = store();
    const w = new RollupWatermarks(ch);
    expect(await w.read(NAME)).toMatchObject({ params: "capital=10000;timeframe=1m" });
    await fills([{ user: C, order: `c2-${run}`, seq: 1, symbol: SA, side: "sell", qty: 1, price: 121, fee: 0.2, at: "2021-05-04T10:00:00Z" }]);
    await nextSecond();
    const p = await pass(s, w);
    expect(p.result.mode).toBe("incremental");
    expect(p.wrote).toEqual([C]);
    expect(await stored(s, [A, B, C])).toEqual(await fromScratch(s, [A, B, C]));

    const other = await pass(s, w, { capital: 20_000 });
    expect(other.result.mode).toBe("full");
    expect(await stored(s, [A, B, C])).toEqual(await fromScratch(s, [A, B, C], 20_000));
    const back = await pass(s, w);
    expect(back.result.mode).toBe("full");
    expect(await stored(s, [A, B, C])).toEqual(await fromScratch(s, [A, B, C]));
  }, 120_000);

  it("a fill inserted while a pass runs, after the pass read that user, is taken by the next pass (the watermark is the pass's start)", async () => {
    const s = store();
    const w = new RollupWatermarks(ch);
    await fills([{ user: A, order: `a4-${run}`, seq: 1, symbol: SA, side: "sell", qty: 1, price: 119, fee: 0.1, at: "2021-05-04T12:00:00Z" }]);
    await nextSecond();
    const read = PerformanceStore.prototype.dayFlows;
    const late = vi.spyOn(PerformanceStore.prototype, "dayFlows").mockImplementation(async function (this: PerformanceStore, users: string[]) {
      const flows = await read.call(this, users);
      if (users.includes(A)) {
        late.mockRestore();
        await fills([{ user: A, order: `a5-${run}`, seq: 1, symbol: SA, side: "sell", qty: 2, price: 122, fee: 0.1, at: "2021-05-04T13:00:00Z" }]);
        await nextSecond();
      }
      return flows;
    });
    try {
      const during = await pass(s, w);
      expect(during.wrote).toContain(A);
    } finally {
      late.mockRestore();
    }
    expect(await stored(s, [A])).not.toEqual(await fromScratch(s, [A]));
    const next = await pass(s, w);
    expect(next.wrote).toEqual([A]);
    expect(await stored(s, mine)).toEqual(await fromScratch(s, mine));
  }, 120_000);

  it("two passes racing (a stale leader's and the new leader's) with inputs arriving between their starts: the next pass leaves every series equal to a full recompute", async () => {
    const s = store();
    const w = new RollupWatermarks(ch);
    await nextSecond();
    const first = runRollup(s, { capital: 10_000, timeframe: "1m", name: NAME, watermarks: w, overlapSeconds: 0, pageUsers: 1 });
    await fills([
      { user: D, order: `d1-${run}`, seq: 1, symbol: SB, side: "buy", qty: 4, price: 52, fee: 0.3, at: "2021-05-02T11:00:00Z" },
      { user: A, order: `a3-${run}`, seq: 1, symbol: SA, side: "buy", qty: 2, price: 118, fee: 0.4, at: "2021-05-04T09:00:00Z" },
    ]);
    const second = runRollup(s, { capital: 10_000, timeframe: "1m", name: NAME, watermarks: w, overlapSeconds: 0, pageUsers: 1 });
    await fills([{ user: B, order: `b3-${run}`, seq: 1, symbol: SB, side: "buy", qty: 1, price: 53, fee: 0, at: "2021-05-03T18:00:00Z" }]);
    const [r1, r2] = await Promise.all([first, second]);
    expect([r1.mode, r2.mode]).toEqual(["incremental", "incremental"]);
    const next = await pass(s, w);
    expect(next.result.mode).toBe("incremental");
    expect(await stored(s, mine)).toEqual(await fromScratch(s, mine));
  }, 120_000);
  it("a stale leader whose clock runs ahead, stopped half way, does not outrank the new leader: every series equals a full recompute after the next pass", async () => {
    const s = store();
    const w = new RollupWatermarks(ch);
    const name = `perf-skew-${run}`;
    const sym = `SKEW${run}`;
    const [X, Y] = [randomUUID(), randomUUID()];
    const opts = { capital: 10_000, timeframe: "1m", name, watermarks: w, overlapSeconds: 0, pageUsers: 1 };
    await fills([
      { user: X, order: `x1-${run}`, seq: 1, symbol: sym, side: "buy", qty: 5, price: 10, fee: 0, at: "2021-06-01T10:00:00Z" },
      { user: Y, order: `y1-${run}`, seq: 1, symbol: sym, side: "buy", qty: 1, price: 10, fee: 0, at: "2021-06-01T11:00:00Z" },
    ]);
    await closes(sym, { "2021-06-01": 10, "2021-06-02": 11 });
    await nextSecond();
    expect((await runRollup(s, opts)).mode).toBe("full");
    await fills([{ user: X, order: `x2-${run}`, seq: 1, symbol: sym, side: "buy", qty: 1, price: 11, fee: 0, at: "2021-06-02T09:00:00Z" }]);
    await nextSecond();
    // The stale leader: its replica's clock an hour ahead; it writes X, then finds the leadership gone (no watermark).
    const realNow = Date.now.bind(Date);
    const ahead = vi.spyOn(Date, "now").mockImplementation(() => realNow() + 3_600_000);
    let asked = 0;
    try {
      await expect(runRollup(s, { ...opts, holds: () => asked++ < 2 })).rejects.toBeInstanceOf(RollupLeadershipLost);
    } finally {
      ahead.mockRestore();
    }
    // A fill the stale pass did not read; the new leader's pass (right clock) takes X again and completes.
    await fills([{ user: X, order: `x3-${run}`, seq: 1, symbol: sym, side: "sell", qty: 2, price: 11, fee: 0, at: "2021-06-02T12:00:00Z" }]);
    await nextSecond();
    expect((await runRollup(s, opts)).mode).toBe("incremental");
    await nextSecond();
    await runRollup(s, opts);
    expect(await stored(s, [X, Y])).toEqual(await fromScratch(s, [X, Y]));
  }, 120_000);
});
