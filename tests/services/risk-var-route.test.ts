/**
 * risk-analyzer's `GET /var` (any trader) on real PostgreSQL and ClickHouse 18.16, its inputs (found
 * by session 47's hunt):
 * - closes that give no usable return (a close of 0 written by a backfill or by hand: market_candles
 *   is Float64, and only data-bridge's path applies the bar rules) made the VaR throw, a 500. A VaR
 *   needs two returns; fewer usable ones is the 404 NOT_ENOUGH_DATA a short history gets;
 * - `timeframe` took what no candle is stored under (`0m`, `01m`: a 404 "not enough data" for a bad
 *   parameter) and refused intervals the platform stores (`1440m`, `1000s`): it is now the platform's
 *   interval (marketdata/barRules.ts INTERVAL_PATTERN, what data-bridge accepts), a 400 naming
 *   `timeframe` otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { migrateAll, migratedClickHouse } from "../helpers/schemas";
import { createService, type Service } from "../../services/src/kit";
import riskAnalyzer from "../../services/src/services/risk-analyzer";

const srv = useServers("postgres", "kafka", "clickhouse");
let risk: Service;
let ch: Awaited<ReturnType<typeof migratedClickHouse>>;

beforeAll(async () => {
  const pool = await migrateAll(srv.env);
  await pool.end();
  ch = await migratedClickHouse(srv.clickhouse.env);
  const candles = (symbol: string, timeframe: string, closes: number[]) =>
    closes.map((c, i) => `('${symbol}', '${timeframe}', toDateTime('2026-03-01 00:00:00') + ${i * 60}, 1, 1, 1, ${c}, 1, 1, 'test')`).join(", ");
  await ch.command(
    `INSERT INTO market_candles (symbol, timeframe, open_time, open, high, low, close, volume, trades, source) VALUES
       ${candles("VARZERO", "1m", [0, 0, 0, 0])}, ${candles("VARONE", "1m", [0, 0, 100, 101])}, ${candles("VARTWO", "1m", [0, 100, 101, 99])},
       ${candles("VARDAY", "1440m", [100, 101, 99, 100])}`,
  );
  risk = await createService(riskAnalyzer, { env: { LOG_LEVEL: "silent", POSTGRES_URL: srv.postgres.url, ...srv.clickhouse.env }, defaultMetrics: false });
}, 600_000);
afterAll(async () => {
  await risk?.close();
  await ch?.close();
});

const trader = { "x-user-id": "0b4b0a8e-6b43-4a7e-9b1f-4f2f3c1d2e5a", "x-user-role": "trader", "x-auth-method": "jwt" };
async function varOf(query: string) {
  const r = await risk.app.inject({ method: "GET", url: `/var?${query}`, headers: trader });
  return { status: r.statusCode, body: r.json() };
}

describe("GET /var on closes that give no usable return", () => {
  it("is the 404 of a short history, not a 500", async () => {
    for (const symbol of ["VARZERO", "VARONE"]) {
      const r = await varOf(`symbol=${symbol}`);
      expect([r.status, r.body.error?.code], symbol).toEqual([404, "NOT_ENOUGH_DATA"]);
    }
  });

  it("is taken over the usable returns when there are two", async () => {
    const r = await varOf("symbol=VARTWO&confidence=0.5");
    expect(r.status).toBe(200);
    expect(r.body.observations).toBe(2);
  });
});

describe("GET /var's timeframe is the platform's bar interval", () => {
  it("refuses what no candle is stored under, naming timeframe", async () => {
    for (const timeframe of ["0m", "01m", "00s", "0w", "12345m", "1y", "m"]) {
      const r = await varOf(`symbol=VARDAY&timeframe=${timeframe}`);
      expect([r.status, r.body.error?.field], timeframe).toEqual([400, "timeframe"]);
    }
  });

  it("takes every interval a candle may be stored under", async () => {
    const r = await varOf("symbol=VARDAY&timeframe=1440m");
    expect([r.status, r.body.observations]).toEqual([200, 3]);
  });
});
