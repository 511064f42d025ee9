/**
 * ml-predictor's serving bars (`BarStore.latestMany`, each POST /internal/predict, ai-orchestrator's and
 * any trader's `POST /api/ml/predict`) on a real ClickHouse 18.16 (session 44's business-logic hunt): the
 * window's start was found by a scalar max(open_time) per symbol over market_candles, every bar of the
 * symbols read at each prediction, a cost only query_log's SelectedMarks shows on 18.16
 * (tests/helpers/query-log.ts). It is read from market_candles_latest (migration 0025) now.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { migratedClickHouse } from "../helpers/schemas";
import { withSelectedMarks } from "../helpers/query-log";
import { BarStore } from "../../services/src/services/ml-predictor/bars";

const srv = useServers("clickhouse");
let ch: Awaited<ReturnType<typeof migratedClickHouse>>;
const HISTORY = 600_000;
const LAST = "2026-03-01 00:00:00";

beforeAll(async () => {
  ch = await migratedClickHouse(srv.clickhouse.env);
  // 600,000 1m bars of MLHIST ending at LAST (close = minute index), and two of MLSHORT.
  await ch.command(
    `INSERT INTO market_candles (symbol, timeframe, open_time, open, high, low, close, volume, trades, source)
     SELECT 'MLHIST', '1m', toDateTime('${LAST}') - (${HISTORY - 1} - number) * 60, 1, 1, 1, number, 1, 1, 'test' FROM numbers(${HISTORY})`,
  );
  await ch.command(
    `INSERT INTO market_candles (symbol, timeframe, open_time, open, high, low, close, volume, trades, source)
     VALUES ('MLSHORT', '1m', '${LAST}', 1, 1, 1, 7, 1, 1, 'test'), ('MLSHORT', '1m', toDateTime('${LAST}') - 60, 1, 1, 1, 6, 1, 1, 'test')`,
  );
  await ch.client.command({ query: "OPTIMIZE TABLE market_candles FINAL" });
}, 300_000);
afterAll(async () => ch?.close());

describe("ml-predictor: serving bars read the window they need (session 44)", () => {
  it("the last n bars of each symbol, the window's start from the latest bar kept per symbol, not from the symbols' history", async () => {
    const { result, marks } = await withSelectedMarks(ch, (logged) => new BarStore(logged, "1m").latestMany(["MLHIST"], 20));
    expect(result.get("MLHIST")!.map((b) => b.close)).toEqual(Array.from({ length: 20 }, (_, i) => HISTORY - 20 + i));
    // Before: 166 granules in a run here (the scalar max(open_time) over the 600,000 bars); now the window's and a row of each of the latest table's parts.
    expect(marks).toBeLessThanOrEqual(12);
    // A symbol with fewer bars than asked is read again without the bound, as before.
    const both = await new BarStore(ch, "1m").latestMany(["MLHIST", "MLSHORT", "MLNONE"], 3);
    expect(both.get("MLSHORT")!.map((b) => b.close)).toEqual([6, 7]);
    expect(both.get("MLHIST")!.map((b) => b.close)).toEqual([HISTORY - 3, HISTORY - 2, HISTORY - 1]);
    expect(both.get("MLNONE")).toEqual([]);
  });
});
