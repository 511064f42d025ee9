/**
 * performance-analytics' rollup tables on real ClickHouse 18.16 (retention.ts): after a completed
 * pass the change tables' monthly partitions that no pass of any rollup reads again are dropped
 * (those whose month ended a day, the greatest overlap, before the oldest watermark in use), never
 * one a lagging rollup still reads, while a rollup name nothing runs any more (its newest watermark
 * older than WATERMARK_IN_USE_SECONDS) holds back none, and a pass whose watermark is that old
 * recomputes every user; a failure to trim is logged and the pass still completes; and
 * a name's superseded completed passes are deleted once enough piled up, its newest pass and the
 * claims kept. Each test runs in a database of its own: the bound depends on every watermark in it.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { useServers } from "../harness/shared";
import { createClickHouse, type ClickHouseKitClient } from "../../services/src/kit/datastores";
import { runClickHouseMigrations } from "../../services/src/migrations";
import { PerformanceStore } from "../../services/src/services/performance-analytics/data";
import { FIGURES_VERSION } from "../../services/src/services/performance-analytics/domain";
import { INCREMENTAL_WITHIN_SECONDS, PASS_ROWS_TRIMMED_AFTER, WATERMARK_IN_USE_SECONDS } from "../../services/src/services/performance-analytics/retention";
import { runRollup } from "../../services/src/services/performance-analytics/rollup";
import { RollupWatermarks } from "../../services/src/services/performance-analytics/watermark";
import { PATIENCE_MS } from "../helpers/patience";

const srv = useServers("clickhouse");
const run = randomBytes(3).toString("hex");
const opened: { db: string; ch: ClickHouseKitClient }[] = [];

async function freshDatabase(label: string): Promise<ClickHouseKitClient> {
  const env = { CLICKHOUSE_URL: srv.env.CLICKHOUSE_URL, CLICKHOUSE_USER: srv.env.CLICKHOUSE_USER, CLICKHOUSE_PASSWORD: srv.env.CLICKHOUSE_PASSWORD };
  const admin = createClickHouse({ ...env, CLICKHOUSE_DATABASE: srv.env.CLICKHOUSE_DATABASE });
  const db = `paret_${label}_${run}`;
  try {
    await admin.command(`CREATE DATABASE ${db}`);
  } finally {
    await admin.close();
  }
  const ch = createClickHouse({ ...env, CLICKHOUSE_DATABASE: db });
  opened.push({ db, ch });
  await runClickHouseMigrations(ch);
  return ch;
}
afterEach(async () => {
  for (const { db, ch } of opened.splice(0)) {
    await ch.command(`DROP DATABASE IF EXISTS ${db}`);
    await ch.close();
  }
});

const unix = (iso: string) => Date.parse(iso) / 1000;
const DAY = 86_400;
/** ClickHouse's DateTime text (UTC server) of unix seconds. */
const dateTime = (at: number) => new Date(at * 1000).toISOString().slice(0, 19).replace("T", " ");
/** The partition (toYYYYMM) of a change at unix seconds `at`, and when its month ends. */
const month = (at: number) => new Date(at * 1000).toISOString().slice(0, 7).replace("-", "");
const monthEnd = (at: number) => {
  const d = new Date(at * 1000);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / 1000;
};
const partitions = async (ch: ClickHouseKitClient, table: string) =>
  (await ch.query<{ partition: string }>("SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() AND active AND table = {table:String} ORDER BY partition", { table })).map((r) => r.partition);
const pass = (ch: ClickHouseKitClient, name: string, log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void }) =>
  runRollup(new PerformanceStore(ch), { capital: 10_000, timeframe: "1m", name, watermarks: new RollupWatermarks(ch), overlapSeconds: 60, log });
const completedPass = (name: string, through: number, version: number) => ({ name, through, day: "2020-01-01", params: "capital=10000;timeframe=1m", figures: FIGURES_VERSION, version, complete: 1 });

describe("change tables", () => {
  it("drop the months no rollup reads again after a pass, keep the one a lagging rollup still reads, then drop it once that rollup moved on", async () => {
    const ch = await freshDatabase("drop");
    const w = new RollupWatermarks(ch);
    const now = await w.serverNow();
    // Another rollup of this database, in use, last completed a pass 20 days ago: with the greatest
    // overlap its next pass reads from a day before that.
    const lagging = "perf-lagging";
    const laggingThrough = now - 20 * DAY;
    const jan = laggingThrough - 70 * DAY;
    const feb = laggingThrough - DAY + 3_600;
    const mar = laggingThrough + DAY;
    await ch.insert("pa_changed_users", [
      { changed_at: dateTime(jan), user_id: "jan" },
      { changed_at: dateTime(feb), user_id: "feb" },
      { changed_at: dateTime(mar), user_id: "mar" },
    ]);
    await ch.insert("pa_changed_symbols", [
      { changed_at: dateTime(jan), timeframe: "1m", symbol: "JANSYM" },
      { changed_at: dateTime(feb), timeframe: "1m", symbol: "FEBSYM" },
    ]);
    await ch.insert("pa_symbol_users", [{ symbol: "JANSYM", user_id: "jan-trader" }, { symbol: "FEBSYM", user_id: "feb-trader" }]);
    await ch.insert("pa_rollup_passes", [completedPass(lagging, laggingThrough, 1)]);
    const log = { info: vi.fn(), warn: vi.fn() };

    // jan's month ended weeks before; feb's and mar's have not ended by the day before the lagging watermark.
    expect(await pass(ch, "perf", log)).toMatchObject({ ran: true });
    expect(await partitions(ch, "pa_changed_users")).toEqual([...new Set([month(feb), month(mar)])]);
    expect(await partitions(ch, "pa_changed_symbols")).toEqual([month(feb)]);
    expect(log.info).toHaveBeenCalledWith(expect.objectContaining({ rollup: "perf", dropped: [`pa_changed_symbols ${month(jan)}`, `pa_changed_users ${month(jan)}`] }), expect.any(String));
    expect(log.warn).not.toHaveBeenCalled();
    // The lagging rollup's next pass still finds everything it would have found.
    expect(await w.changedUserPage("", 10, { since: laggingThrough - DAY, timeframe: "1m" })).toEqual(["feb", "feb-trader", "mar"]);

    // The lagging rollup completes a pass now: the next pass of either keeps only the months that
    // have not ended a day before now (this month's changes: a fill inserted now, fed by the view).
    const later = await w.serverNow();
    await ch.insert("pa_rollup_passes", [completedPass(lagging, later, 2)]);
    const fresh = randomUUID();
    await ch.insert("pa_fills", [{ fill_id: `${fresh}:1`, order_id: fresh, user_id: fresh, symbol: "NOWSYM", side: "buy", quantity: 1, price: 1, fee: 0, ts_ms: Date.now(), at: "2020-03-01 00:00:00" }]);
    expect(await pass(ch, lagging, log)).toMatchObject({ ran: true });
    const notEnded = (at: number) => monthEnd(at) > later - DAY;
    expect(await partitions(ch, "pa_changed_users")).toEqual([...new Set([feb, mar, later].filter(notEnded).map(month))]);
    expect(await partitions(ch, "pa_changed_symbols")).toEqual([feb].filter(notEnded).map(month));
    expect(await w.changedUserPage("", 10, { since: later - 60, timeframe: "1m" })).toEqual([fresh]);
  }, 120_000);

  it(`a rollup name nothing runs any more (its newest watermark older than ${WATERMARK_IN_USE_SECONDS / DAY} days) holds back no month`, async () => {
    const ch = await freshDatabase("abandoned");
    const w = new RollupWatermarks(ch);
    const now = await w.serverNow();
    // A name a release of 2020 ran (0008's table and 0009's), and one last run a day past the bound.
    await ch.insert("pa_rollup_watermark", [{ name: "perf-2020", through: unix("2020-03-01T12:00:00Z"), day: "2020-03-01", params: "capital=10000;timeframe=1m", version: 1 }]);
    await ch.insert("pa_rollup_passes", [completedPass("perf-2020", unix("2020-03-01T12:00:00Z"), 2), completedPass("perf-renamed", now - WATERMARK_IN_USE_SECONDS - DAY, 1)]);
    const old = now - WATERMARK_IN_USE_SECONDS - 40 * DAY;
    await ch.insert("pa_changed_users", [{ changed_at: "2020-02-29 13:00:00", user_id: "feb2020" }, { changed_at: dateTime(old), user_id: "old" }]);
    const log = { info: vi.fn(), warn: vi.fn() };
    expect(await pass(ch, "perf", log)).toMatchObject({ ran: true });
    // Only "perf" is in use: every month that ended a day before its watermark goes.
    expect(await partitions(ch, "pa_changed_users")).toEqual([]);
    expect(log.info).toHaveBeenCalledWith(expect.objectContaining({ rollup: "perf", dropped: ["pa_changed_users 202002", `pa_changed_users ${month(old)}`] }), expect.any(String));
    // A name one day inside the bound still holds its months back.
    await ch.insert("pa_rollup_passes", [completedPass("perf-lagging", now - WATERMARK_IN_USE_SECONDS + DAY, 1)]);
    const kept = now - WATERMARK_IN_USE_SECONDS + 3_600;
    await ch.insert("pa_changed_users", [{ changed_at: dateTime(kept), user_id: "kept" }]);
    expect(await pass(ch, "perf", log)).toMatchObject({ ran: true });
    expect(await partitions(ch, "pa_changed_users")).toEqual([month(kept)]);
  }, 120_000);

  it(`a pass whose watermark is more than ${INCREMENTAL_WITHIN_SECONDS / DAY} days old recomputes every user, and says why`, async () => {
    const ch = await freshDatabase("stale");
    const w = new RollupWatermarks(ch);
    const now = await w.serverNow();
    await ch.insert("pa_rollup_passes", [completedPass("perf", now - INCREMENTAL_WITHIN_SECONDS - 3_600, 1), completedPass("recent", now - INCREMENTAL_WITHIN_SECONDS + 3_600, 1)]);
    const log = { info: vi.fn(), warn: vi.fn() };
    const stale = await pass(ch, "perf", log);
    expect(stale).toMatchObject({ ran: true, mode: "full", reason: expect.stringMatching(/^watermark older than 29 days .*: recomputing every user$/) });
    expect(log.info).toHaveBeenCalledWith(expect.objectContaining({ rollup: "perf", watermark: now - INCREMENTAL_WITHIN_SECONDS - 3_600 }), stale.reason);
    // Its new watermark is today's: the next pass is incremental again. A watermark inside the bound is read from.
    expect(await pass(ch, "perf", log)).toMatchObject({ ran: true, mode: "incremental" });
    expect(await pass(ch, "recent", log)).toMatchObject({ ran: true, mode: "incremental" });
  }, 120_000);

  it("a failure to drop is logged and the pass still completes with its watermark", async () => {
    const ch = await freshDatabase("fail");
    const w = new RollupWatermarks(ch);
    await ch.insert("pa_changed_users", [{ changed_at: "2019-05-01 00:00:00", user_id: "old" }]);
    const command = ch.command.bind(ch);
    const refuse = vi.spyOn(ch, "command").mockImplementation(async (sql: string, params?: Record<string, unknown>) => {
      if (sql.includes("DROP PARTITION")) throw new Error("Code: 241. DB::Exception: Memory limit exceeded");
      return command(sql, params);
    });
    const log = { info: vi.fn(), warn: vi.fn() };
    try {
      expect(await pass(ch, "perf", log)).toMatchObject({ ran: true, mode: "full" });
    } finally {
      refuse.mockRestore();
    }
    expect(log.warn).toHaveBeenCalledWith(expect.objectContaining({ rollup: "perf", err: { message: expect.stringContaining("Memory limit exceeded") } }), expect.stringMatching(/trimming/));
    expect(await w.read("perf")).toBeDefined();
    expect(await partitions(ch, "pa_changed_users")).toEqual(["201905"]);
    // The next pass drops it.
    expect(await pass(ch, "perf", log)).toMatchObject({ ran: true, mode: "incremental" });
    expect(await partitions(ch, "pa_changed_users")).toEqual([]);
  }, 120_000);
});

describe("pa_rollup_passes", () => {
  it("the watermark read is the pass of the greatest version as a number, whatever its digits", async () => {
    const ch = await freshDatabase("order");
    await ch.insert("pa_rollup_passes", [completedPass("perf", 1767225698, 99), completedPass("perf", 1796172201, 1796172201548874)]);
    await ch.insert("pa_rollup_watermark", [{ name: "perf", through: 1767225000, day: "2026-01-01", params: "capital=10000;timeframe=1m", version: 9 }]);
    // Ordered as text, "99" and "9" came before "1796172201548874".
    expect(await new RollupWatermarks(ch).read("perf")).toMatchObject({ through: 1796172201, version: 1796172201548874 });
  }, 60_000);

  it("loses a name's superseded completed passes once enough piled up; the newest pass, the claims and other names' rows stay", async () => {
    const ch = await freshDatabase("passes");
    const w = new RollupWatermarks(ch);
    const base = unix("2026-01-01T00:00:00Z");
    await ch.insert("pa_rollup_passes", [
      { name: "perf", through: 0, day: "1970-01-01", params: "", figures: FIGURES_VERSION, version: 0, complete: 0 },
      ...Array.from({ length: PASS_ROWS_TRIMMED_AFTER - 1 }, (_, i) => completedPass("perf", base + i, i + 1)),
      completedPass("other", base, 1),
      completedPass("other", base + 1, 2),
    ]);
    const log = { info: vi.fn(), warn: vi.fn() };
    // 99 superseded rows after this pass: below the threshold, nothing deleted.
    expect(await pass(ch, "perf", log)).toMatchObject({ ran: true });
    const count = async (where: string) => Number((await ch.query<{ n: string }>(`SELECT toString(count()) AS n FROM pa_rollup_passes WHERE ${where}`))[0].n);
    expect(await count("name = 'perf' AND complete = 1")).toBe(PASS_ROWS_TRIMMED_AFTER);
    // The next pass makes 100: its predecessors go.
    const result = await pass(ch, "perf", log);
    expect(result).toMatchObject({ ran: true });
    const newest = await w.read("perf");
    // The newest by number: 99 was read as newer than the pass's 16-digit version while read() ordered by the version's text.
    expect(newest).toMatchObject({ version: Number((await ch.query<{ v: string }>("SELECT toString(max(version)) AS v FROM pa_rollup_passes WHERE name = 'perf'"))[0].v) });
    await expect.poll(() => count("name = 'perf' AND complete = 1"), { timeout: PATIENCE_MS, interval: 200 }).toBe(1);
    expect(await w.read("perf")).toEqual(newest);
    expect(await count("name = 'perf' AND complete = 0")).toBe(1);
    expect(await w.newestFigures("perf")).toBe(FIGURES_VERSION);
    expect(await count("name = 'other'")).toBe(2);
    expect(log.info).toHaveBeenCalledWith(expect.objectContaining({ rollup: "perf", passRows: PASS_ROWS_TRIMMED_AFTER }), expect.any(String));
    expect(log.warn).not.toHaveBeenCalled();
  }, 120_000);
});
