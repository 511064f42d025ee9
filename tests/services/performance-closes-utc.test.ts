/**
 * performance-analytics' daily closes on a ClickHouse server whose time zone is not UTC (a private
 * 18.16 server at Asia/Tokyo, UTC+9): the close of a day is the last candle of the UTC day, the day
 * the fills are summed by (dayFlows: whole days of epoch milliseconds). toDate(open_time) answered
 * Tokyo's day, so a candle at 23:30 UTC closed the next day and the day's close was an earlier one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startClickHouse, type ClickHouseServer } from "../harness";
import { migratedClickHouse } from "../helpers/schemas";
import { PerformanceStore } from "../../services/src/services/performance-analytics/data";

let server: ClickHouseServer;
let ch: Awaited<ReturnType<typeof migratedClickHouse>>;

beforeAll(async () => {
  server = await startClickHouse({ timezone: "Asia/Tokyo" });
  ch = await migratedClickHouse(server.env);
}, 300_000);

afterAll(async () => {
  await ch?.close();
  await server?.stop();
});

describe("daily closes on a server in another time zone", () => {
  it("are the last candle of each UTC day", async () => {
    const at = (iso: string) => Date.parse(iso) / 1000;
    const candles: Array<[string, number]> = [
      ["2027-01-01T10:00:00Z", 100], // Tokyo's Jan 1, 19:00
      ["2027-01-01T23:30:00Z", 101], // Tokyo's Jan 2, 08:30: still Jan 1 in UTC, its last candle
      ["2027-01-02T12:00:00Z", 102],
      ["2026-12-31T23:59:00Z", 99], // before the first day asked for (Tokyo's Jan 1)
    ];
    await server.query(
      `INSERT INTO market_candles (symbol, timeframe, open_time, open, high, low, close, volume, trades, source) VALUES ${candles
        .map(([t, c]) => `('TZUSDT', '1m', toDateTime(${at(t)}), ${c}, ${c}, ${c}, ${c}, 1, 0, 'test')`)
        .join(", ")}`,
    );
    const closes = await new PerformanceStore(ch).dailyCloses(["TZUSDT"], "1m", "2027-01-01");
    expect(Object.fromEntries(closes.get("TZUSDT") ?? [])).toEqual({ "2027-01-01": 101, "2027-01-02": 102 });
  }, 60_000);
});
