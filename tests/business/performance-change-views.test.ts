/**
 * The materialized view migration 0009 puts on market_candles runs inside every candle insert
 * (data-bridge's writer sends a batch as one insert, so one block up to 1,048,576 rows): on real
 * ClickHouse 18.16 it writes one row per timeframe and symbol of the block (plus one per later day
 * a candle is dated on), not one per candle, before any merge folds them.
 * The cost of the view on data-bridge's inserts is measured by `npx tsx bench/bars.ts 1000000 1 5000 4 series`, not here.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createClickHouse, type ClickHouseKitClient } from "../../services/src/kit/datastores";
import { runClickHouseMigrations } from "../../services/src/migrations";
import { dayOf } from "../../services/src/services/performance-analytics/domain";

const srv = useServers("clickhouse");
const db = `pachv_${randomBytes(3).toString("hex")}`;
let ch: ClickHouseKitClient;
const env = () => ({ CLICKHOUSE_URL: srv.env.CLICKHOUSE_URL, CLICKHOUSE_USER: srv.env.CLICKHOUSE_USER, CLICKHOUSE_PASSWORD: srv.env.CLICKHOUSE_PASSWORD });

beforeAll(async () => {
  const admin = createClickHouse({ ...env(), CLICKHOUSE_DATABASE: srv.env.CLICKHOUSE_DATABASE });
  try {
    await admin.command(`CREATE DATABASE ${db}`);
  } finally {
    await admin.close();
  }
  ch = createClickHouse({ ...env(), CLICKHOUSE_DATABASE: db });
  await runClickHouseMigrations(ch);
}, 120_000);
afterAll(async () => {
  await ch?.command(`DROP DATABASE IF EXISTS ${db}`);
  await ch?.close();
});

describe("pa_changed_symbols_by_candles", () => {
  it("writes a row per timeframe and symbol of an inserted block (and per later day), not per candle", async () => {
    // Merges stopped: the rows counted are those the view wrote, not what a merge left of them.
    await ch.command("SYSTEM STOP MERGES pa_changed_symbols");
    const minute = (i: number) => new Date(Date.UTC(2020, 0, 1) + i * 60_000).toISOString().slice(0, 19).replace("T", " ");
    const candle = (symbol: string, timeframe: string, openTime: string) => ({ symbol, timeframe, open_time: openTime, open: 1, high: 1, low: 1, close: 1, volume: 1, trades: 1, source: "test" });
    const rows = ["AAA", "BBB", "CCC"].flatMap((s) => Array.from({ length: 2_000 }, (_, i) => candle(s, "1m", minute(i))));
    rows.push(candle("AAA", "1h", minute(0)));
    const later = [1, 2].map((d) => dayOf(Date.now() + d * 86_400_000));
    for (const day of later) rows.push(candle("AAA", "1m", `${day} 00:00:00`));
    await ch.insert("market_candles", rows);
    const written = await ch.query<{ n: string }>("SELECT toString(sum(rows)) AS n FROM system.parts WHERE database = currentDatabase() AND table = 'pa_changed_symbols' AND active");
    expect(Number(written[0].n)).toBe(3 + 1 + later.length);
    const changes = await ch.query<{ at: string; timeframe: string; symbol: string }>("SELECT toString(changed_at) AS at, timeframe, symbol FROM pa_changed_symbols ORDER BY at, timeframe, symbol");
    const inserted = changes[0].at;
    expect(changes).toEqual([
      { at: inserted, timeframe: "1h", symbol: "AAA" },
      { at: inserted, timeframe: "1m", symbol: "AAA" },
      { at: inserted, timeframe: "1m", symbol: "BBB" },
      { at: inserted, timeframe: "1m", symbol: "CCC" },
      ...later.map((day) => ({ at: `${day} 00:00:00`, timeframe: "1m", symbol: "AAA" })),
    ]);
  }, 120_000);
});
