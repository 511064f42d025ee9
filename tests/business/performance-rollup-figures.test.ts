/**
 * performance-analytics' rollup on real ClickHouse 18.16, the two things its incremental passes
 * lacked (rollup.ts, watermark.ts, migration 0009):
 * - the figures' definition is versioned: a pass of a release computing another FIGURES_VERSION
 *   than the last watermark's rebuilds every user by itself, once, and says so (log and result);
 *   during a rolling deploy a pass of the older release backs off (ran: false) once the newer one
 *   claimed its version, or stops mid-pass, and never outranks the newer figures: neither release
 *   rebuilds again. Two releases are played by passing `figures` (what FIGURES_VERSION would be).
 * - finding the users changed since the watermark reads the rows changed since it (change tables
 *   fed at insert time, ordered by that time), not whole inserted_at columns: the lookup's
 *   `rows_read` (the server's statistics of the very query the pass sent) stays within a few
 *   granules while 100,000 older changes sit in the tables, where the previous lookup read them all.
 * - migration 0009 on a database that had 0001-0008 and rows: it copies the history the views did
 *   not see, and 0008's watermark still counts (as figures 1), so no rebuild follows the deploy.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { useServers } from "../harness/shared";
import { createClickHouse, type ClickHouseKitClient } from "../../services/src/kit/datastores";
import { bindParamsForLegacyServer } from "../../services/src/kit/clickhouse/legacy-binding";
import { CLICKHOUSE_MIGRATIONS_DIR, loadMigrationFiles, runClickHouseMigrations } from "../../services/src/migrations";
import { PerformanceStore } from "../../services/src/services/performance-analytics/data";
import { dayOf, FIGURES_VERSION, type DailyPoint } from "../../services/src/services/performance-analytics/domain";
import { rollupPage, RollupSuperseded, runRollup, type RollupOptions } from "../../services/src/services/performance-analytics/rollup";
import { RollupWatermarks } from "../../services/src/services/performance-analytics/watermark";
import { migratedClickHouse } from "../helpers/schemas";

const srv = useServers("clickhouse");
const run = randomBytes(3).toString("hex");
let ch: ClickHouseKitClient;

beforeAll(async () => {
  ch = await migratedClickHouse(srv.env);
}, 120_000);
afterAll(async () => {
  await ch?.close();
});

const chTime = (iso: string) => iso.slice(0, 19).replace("T", " ");
type Fill = { user: string; order: string; symbol: string; qty: number; price: number; at: string; insertedAt?: string };
const fills = (rows: Fill[]) =>
  ch.insert("pa_fills", rows.map((r) => ({ fill_id: `${r.order}:1`, order_id: r.order, user_id: r.user, symbol: r.symbol, side: "buy", quantity: r.qty, price: r.price, fee: 0, ts_ms: Date.parse(r.at), at: chTime(r.at), ...(r.insertedAt && { inserted_at: r.insertedAt }) })));
const closes = (symbol: string, byDay: Record<string, number>, insertedAt?: string) =>
  ch.insert("market_candles", Object.entries(byDay).map(([day, close]) => ({ symbol, timeframe: "1m", open_time: `${day} 23:59:00`, open: close, high: close, low: close, close, volume: 1, trades: 1, source: "test", ...(insertedAt && { inserted_at: insertedAt }) })));
const nextSecond = () => sleep(1100);

type Series = Record<string, DailyPoint[]>;
async function fromScratch(store: PerformanceStore, users: string[]): Promise<Record<string, Series>> {
  const page = await rollupPage(store, await store.dayFlows(users), { capital: 10_000, timeframe: "1m", today: dayOf(Date.now()) });
  return Object.fromEntries(users.map((u) => [u, Object.fromEntries((page.byUser.get(u) ?? []).map((s) => [s.strategy, s.points]))]));
}
const stored = async (store: PerformanceStore, users: string[]) => Object.fromEntries(await Promise.all(users.map(async (u) => [u, Object.fromEntries(await store.daily(u))] as const)));
/** Each user's highest pa_daily version: the one readers take. */
async function latestVersions(users: string[]): Promise<Record<string, number>> {
  const rows = await ch.query<{ user_id: string; v: string }>("SELECT user_id, toString(max(version)) AS v FROM pa_daily WHERE has({users:Array(String)}, user_id) GROUP BY user_id", { users });
  return Object.fromEntries(rows.map((r) => [r.user_id, Number(r.v)]));
}

describe("figures version", () => {
  const [A, B] = [randomUUID(), randomUUID()];
  const sym = `FIG${run}`;
  const name = `perf-fig-${run}`;
  const log = { info: vi.fn(), warn: vi.fn() };
  async function pass(figures: number, extra: Partial<RollupOptions> = {}) {
    const writes = vi.spyOn(PerformanceStore.prototype, "writeDaily");
    try {
      const result = await runRollup(new PerformanceStore(ch), { capital: 10_000, timeframe: "1m", name, watermarks: new RollupWatermarks(ch), overlapSeconds: 0, pageUsers: 1, figures, log, ...extra });
      return { result, wrote: [...new Set(writes.mock.calls.map(([u]) => u).filter((u) => u === A || u === B))].sort() };
    } finally {
      writes.mockRestore();
    }
  }

  it("another release's figures version rebuilds every user once, by itself; the older release then backs off and neither rebuilds again", async () => {
    const s = new PerformanceStore(ch);
    const w = new RollupWatermarks(ch);
    await fills([
      { user: A, order: `a1-${run}`, symbol: sym, qty: 2, price: 10, at: "2021-07-01T10:00:00Z" },
      { user: B, order: `b1-${run}`, symbol: sym, qty: 1, price: 11, at: "2021-07-02T10:00:00Z" },
    ]);
    await closes(sym, { "2021-07-01": 10.5, "2021-07-02": 12 });
    await nextSecond();
    expect((await pass(FIGURES_VERSION)).result).toMatchObject({ ran: true, mode: "full", figures: FIGURES_VERSION });
    await nextSecond();
    expect((await pass(FIGURES_VERSION)).wrote).toEqual([]);

    // The deploy of a release whose figures are version +1: its first pass rebuilds every user unasked.
    const next = FIGURES_VERSION + 1;
    log.info.mockClear();
    const rebuilt = await pass(next);
    expect(rebuilt.result).toMatchObject({ ran: true, mode: "full", figures: next, reason: `figures version ${FIGURES_VERSION} -> ${next}: rebuilding every user` });
    expect(rebuilt.wrote).toEqual([A, B].sort());
    expect(log.info).toHaveBeenCalledWith(expect.objectContaining({ from: FIGURES_VERSION, to: next }), rebuilt.result.reason);
    expect(await w.read(name)).toMatchObject({ figures: next });
    expect(await stored(s, [A, B])).toEqual(await fromScratch(s, [A, B]));
    await nextSecond();
    const again = await pass(next);
    expect(again.result).toMatchObject({ mode: "incremental" });
    expect(again.result.reason).toBeUndefined();
    expect(again.wrote).toEqual([]);

    // A replica still on the older release leads for a while: it writes nothing, keeps the watermark, says why.
    await fills([{ user: A, order: `a2-${run}`, symbol: sym, qty: 1, price: 12, at: "2021-07-02T12:00:00Z" }]);
    await nextSecond();
    const before = await w.read(name);
    const old = await pass(FIGURES_VERSION);
    expect(old.result).toMatchObject({ ran: false, figures: FIGURES_VERSION });
    expect(old.result.reason).toMatch(new RegExp(`figures version ${next} of a newer release`));
    expect(old.wrote).toEqual([]);
    expect(log.warn).toHaveBeenCalled();
    expect(await w.read(name)).toEqual(before);
    // The newer release's next pass is incremental: A's new fill only.
    const after = await pass(next);
    expect(after.result).toMatchObject({ ran: true, mode: "incremental" });
    expect(after.wrote).toEqual([A]);
    expect(await stored(s, [A, B])).toEqual(await fromScratch(s, [A, B]));
  }, 120_000);

  it("a newer release's rebuild during an older release's pass: the older pass stops before its watermark, and its rows never outrank the newer ones", async () => {
    const s = new PerformanceStore(ch);
    const w = new RollupWatermarks(ch);
    await fills([{ user: B, order: `b2-${run}`, symbol: sym, qty: 1, price: 12, at: "2021-07-02T13:00:00Z" }]);
    await nextSecond();
    const older = FIGURES_VERSION + 1;
    const newer = FIGURES_VERSION + 2;
    // The older release's full pass (one user a page) reads its first page, then the newer release's pass runs whole.
    const read = PerformanceStore.prototype.dayFlows;
    let newerPass: Promise<unknown> | undefined;
    const hook = vi.spyOn(PerformanceStore.prototype, "dayFlows").mockImplementation(async function (this: PerformanceStore, users: string[]) {
      const flows = await read.call(this, users);
      if (!newerPass) {
        newerPass = pass(newer);
        await newerPass;
      }
      return flows;
    });
    try {
      await expect(pass(older, { full: true })).rejects.toBeInstanceOf(RollupSuperseded);
    } finally {
      hook.mockRestore();
    }
    const mark = await w.read(name);
    expect(mark).toMatchObject({ figures: newer });
    // The older pass wrote its first user after the newer pass did: the newer version still wins.
    expect(await latestVersions([A, B])).toEqual({ [A]: mark!.version, [B]: mark!.version });
    expect(await stored(s, [A, B])).toEqual(await fromScratch(s, [A, B]));
    await nextSecond();
    expect((await pass(older)).result).toMatchObject({ ran: false });
    expect((await pass(newer)).result).toMatchObject({ ran: true, mode: "incremental", users: 0 });
  }, 120_000);
});

describe("changed users since the watermark", () => {
  it("are read from the changes since it: rows_read stays within a few granules with 100,000 older changes, where the whole-column lookup read them all", async () => {
    const w = new RollupWatermarks(ch);
    const [old, moved, fresh, future] = [`OLD${run}`, `MOV${run}`, `NEW${run}`, `FUT${run}`];
    const past = "2020-01-01 00:00:00";
    const background = Array.from({ length: 100_000 }, (_, i) => ({ user: `bg-${run}-${String(i).padStart(6, "0")}`, order: `bg-${run}-${i}`, symbol: old, qty: 1, price: 1, at: "2020-01-01T00:00:00Z", insertedAt: past }));
    for (let i = 0; i < background.length; i += 25_000) await fills(background.slice(i, i + 25_000));
    await closes(old, { "2020-01-01": 1, "2020-01-02": 1 }, past);
    // Old fills in symbols whose closes change now (MOV) or are dated after the watermark's day (FUT, inserted long ago).
    const [M, F, N] = [randomUUID(), randomUUID(), randomUUID()];
    await fills([
      { user: M, order: `m-${run}`, symbol: moved, qty: 1, price: 5, at: "2020-01-01T00:00:00Z", insertedAt: past },
      { user: F, order: `f-${run}`, symbol: future, qty: 1, price: 5, at: "2020-01-01T00:00:00Z", insertedAt: past },
    ]);
    const tomorrow = dayOf(Date.now() + 86_400_000);
    await closes(future, { [tomorrow]: 6 }, past);
    const since = (await w.serverNow()) - 1;
    await nextSecond();
    await fills([{ user: N, order: `n-${run}`, symbol: fresh, qty: 1, price: 5, at: "2021-01-01T00:00:00Z" }]);
    await closes(moved, { "2020-01-02": 6 });

    const sent: { sql: string; params: Record<string, unknown> }[] = [];
    const query = ch.query.bind(ch);
    const spy = vi.spyOn(ch, "query").mockImplementation(async (sql: string, params: Record<string, unknown> = {}) => {
      sent.push({ sql, params });
      return query(sql, params);
    });
    let changed: string[];
    // closesAfter: what the lookup before the change tables took too (the last pass's day), so this runs against it as well.
    const sinceWatermark = { since, timeframe: "1m", closesAfter: dayOf(Date.now()) };
    try {
      changed = await w.changedUserPage("", 1000, sinceWatermark);
    } finally {
      spy.mockRestore();
    }
    expect(changed).toEqual([M, F, N].sort());
    expect(sent).toHaveLength(1);
    const rowsRead = async (sql: string, params: Record<string, unknown>) => {
      const rs = (await ch.paramBinding()) === "server"
        ? await ch.client.query({ query: sql, query_params: params, format: "JSON" })
        : await ch.client.query({ query: bindParamsForLegacyServer(sql, params), format: "JSON" });
      return ((await rs.json()) as { statistics: { rows_read: number } }).statistics.rows_read;
    };
    const lookup = await rowsRead(sent[0].sql, sent[0].params);
    // The lookup before the change tables (0008's watermark.ts), on the same data.
    const wholeColumns = await rowsRead(
      `SELECT user_id FROM (
           SELECT user_id FROM pa_fills WHERE inserted_at >= toDateTime({since:UInt32})
           UNION ALL
           SELECT user_id FROM pa_order_strategies WHERE inserted_at >= toDateTime({since:UInt32})
           UNION ALL
           SELECT user_id FROM pa_fills WHERE symbol IN (
             SELECT symbol FROM market_candles
              WHERE timeframe = {tf:String} AND (inserted_at >= toDateTime({since:UInt32}) OR toDate(open_time) > {closesAfter:Date})))
        WHERE user_id > {after:String} GROUP BY user_id ORDER BY user_id LIMIT {limit:UInt32}`,
      { since, tf: "1m", closesAfter: dayOf(Date.now()), after: "", limit: 1000 },
    );
    console.log(`changed-user lookup: ${lookup} rows read; the whole-column lookup: ${wholeColumns}`);
    expect(wholeColumns).toBeGreaterThanOrEqual(200_000);
    // At most a granule (8192 rows) either side of the range in each of the change tables it reads.
    expect(lookup).toBeLessThan(4 * 8192);
  }, 180_000);
});

describe("migration 0009 on a database with history", () => {
  it("copies what was inserted before the views: every symbol a user traded, and the changes from a day before the oldest watermark on", async () => {
    const db = `pa0009_${run}`;
    await ch.command(`CREATE DATABASE ${db}`);
    const old = createClickHouse({ CLICKHOUSE_URL: srv.env.CLICKHOUSE_URL, CLICKHOUSE_USER: srv.env.CLICKHOUSE_USER, CLICKHOUSE_PASSWORD: srv.env.CLICKHOUSE_PASSWORD, CLICKHOUSE_DATABASE: db });
    try {
      const files = loadMigrationFiles(CLICKHOUSE_MIGRATIONS_DIR);
      await runClickHouseMigrations(old, { files: files.filter((f) => f.version < 9) });
      const row = (user: string, symbol: string, insertedAt: string) => ({ fill_id: `${user}:${insertedAt}`, order_id: `o-${user}`, user_id: user, symbol, side: "buy", quantity: 1, price: 1, fee: 0, ts_ms: 0, at: "2020-01-01 00:00:00", inserted_at: insertedAt });
      await old.insert("pa_fills", [row("long-ago", "SYM1", "2020-01-01 00:00:00"), row("recent", "SYM2", "2020-06-01 12:00:00")]);
      await old.insert("pa_order_strategies", [{ order_id: "o-strat", user_id: "strat", strategy: "momo", inserted_at: "2020-06-01 12:30:00" }]);
      await old.insert("market_candles", [
        { symbol: "SYM1", timeframe: "1m", open_time: "2020-01-01 00:00:00", open: 1, high: 1, low: 1, close: 1, volume: 1, trades: 1, source: "t", inserted_at: "2020-01-01 00:00:00" },
        { symbol: "SYM2", timeframe: "1m", open_time: "2020-06-01 11:00:00", open: 1, high: 1, low: 1, close: 1, volume: 1, trades: 1, source: "t", inserted_at: "2020-06-01 11:00:00" },
      ]);
      // The watermark of 0008: its pass started 2020-06-01 12:00:00 (unix 1590991200).
      await old.insert("pa_rollup_watermark", [{ name: "perf", through: 1590991200, day: "2020-06-01", params: "capital=10000;timeframe=1m", version: 1 }]);
      await runClickHouseMigrations(old, { files });
      expect(await old.query("SELECT symbol, user_id FROM pa_symbol_users ORDER BY symbol")).toEqual([{ symbol: "SYM1", user_id: "long-ago" }, { symbol: "SYM2", user_id: "recent" }]);
      expect(await old.query("SELECT toString(changed_at) AS at, user_id FROM pa_changed_users ORDER BY at")).toEqual([{ at: "2020-06-01 12:00:00", user_id: "recent" }, { at: "2020-06-01 12:30:00", user_id: "strat" }]);
      expect(await old.query("SELECT toString(changed_at) AS at, symbol FROM pa_changed_symbols")).toEqual([{ at: "2020-06-01 11:00:00", symbol: "SYM2" }]);
      // 0008's watermark still counts, as figures 1: no rebuild follows the migration.
      expect(await new RollupWatermarks(old).read("perf")).toMatchObject({ through: 1590991200, figures: 1, version: 1 });
      // From here on the views feed the tables.
      await old.insert("pa_fills", [row("later", "SYM3", "2020-07-01 00:00:00")]);
      expect(await new RollupWatermarks(old).changedUserPage("", 10, { since: 1593561600, timeframe: "1m" })).toEqual(["later"]);
    } finally {
      await old.close();
      await ch.command(`DROP DATABASE IF EXISTS ${db}`);
    }
  }, 120_000);
});
