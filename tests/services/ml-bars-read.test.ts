/**
 * ml-predictor's serving bars (`BarStore.latestMany`, each POST /internal/predict, ai-orchestrator's and
 * any trader's `POST /api/ml/predict`) on a real ClickHouse 18.16 (session 44's business-logic hunt): the
 * window's start was found by a scalar max(open_time) per symbol over market_candles, every bar of the
 * symbols read at each prediction, a cost only query_log's SelectedMarks shows on 18.16
 * (tests/helpers/query-log.ts). It is read from market_candles_latest (migration 0025) now. Training's bars
 * (`BarStore.latest`, `history`) folded each symbol's whole history, and one window start for all the
 * symbols asked read a fresh one back to a stale one's bars: each symbol is read in its own window now
 * (session 45's business-logic hunt).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { migratedClickHouse } from "../helpers/schemas";
import { mergeChainAndCandleTables, withSelectedMarks } from "../helpers/query-log";
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
  // MLSTALE: 30 bars whose feed stopped 300 days before LAST. MLGAP: 5 bars up to LAST, then 1,000 minutes
  // without any, then 40 before. MLSPARSE: its last bar at LAST, the one before 10 days earlier, and 200,000
  // bars before that (dense history, far back).
  await ch.command(
    `INSERT INTO market_candles (symbol, timeframe, open_time, open, high, low, close, volume, trades, source)
     SELECT 'MLSTALE', '1m', toDateTime('${LAST}') - 300 * 86400 - (29 - number) * 60, 1, 1, 1, number, 1, 1, 'test' FROM numbers(30)`,
  );
  await ch.command(
    `INSERT INTO market_candles (symbol, timeframe, open_time, open, high, low, close, volume, trades, source)
     SELECT 'MLGAP', '1m', toDateTime('${LAST}') - (if(number < 5, 0, 1000) + number) * 60, 1, 1, 1, number, 1, 1, 'test' FROM numbers(45)`,
  );
  await ch.command(
    `INSERT INTO market_candles (symbol, timeframe, open_time, open, high, low, close, volume, trades, source)
     SELECT 'MLSPARSE', '1m', toDateTime('${LAST}') - if(number = 0, 0, 14400 + number) * 60, 1, 1, 1, number, 1, 1, 'test' FROM numbers(200002)`,
  );
  // Merged as ClickHouse merges in the background (a part per month), OPTIMIZE repeated past a running merge.
  await mergeChainAndCandleTables(ch);
}, 300_000);
afterAll(async () => ch?.close());

describe("ml-predictor: serving bars read the window they need (session 44)", () => {
  it("the last n bars of each symbol, the window's start from the latest bar kept per symbol, not from the symbols' history", async () => {
    const { result, marks } = await withSelectedMarks(ch, (logged) => new BarStore(logged, "1m").latestMany(["MLHIST"], 20));
    expect(result.get("MLHIST")!.map((b) => b.close)).toEqual(Array.from({ length: 20 }, (_, i) => HISTORY - 20 + i));
    // Before: 166 granules in a run here (the scalar max(open_time) over the 600,000 bars); now the window's and a row of each of the latest table's parts.
    expect(marks).toBeLessThanOrEqual(12);
    // A symbol with fewer bars than asked has them all (read again in wider windows, session 45).
    const both = await new BarStore(ch, "1m").latestMany(["MLHIST", "MLSHORT", "MLNONE"], 3);
    expect(both.get("MLSHORT")!.map((b) => b.close)).toEqual([6, 7]);
    expect(both.get("MLHIST")!.map((b) => b.close)).toEqual([HISTORY - 3, HISTORY - 2, HISTORY - 1]);
    expect(both.get("MLNONE")).toEqual([]);
    // A symbol named twice is read once, its bars answered once (session 46).
    expect((await new BarStore(ch, "1m").latestMany(["MLSHORT", "MLSHORT"], 3)).get("MLSHORT")!.map((b) => b.close)).toEqual([6, 7]);
  });
});

describe("ml-predictor: training bars and each symbol's window (session 45)", () => {
  it("training's history of a symbol reads its last bars' window, not the symbol's 600,000 bars", async () => {
    const { result, marks } = await withSelectedMarks(ch, (logged) => new BarStore(logged, "1m").history(["MLHIST"], 20));
    expect(result.map((b) => b.close)).toEqual(Array.from({ length: 20 }, (_, i) => HISTORY - 20 + i));
    // Before: 82 granules in a run here (BarStore.latest folded the whole history).
    expect(marks).toBeLessThanOrEqual(12);
  });

  it("a fresh symbol asked beside a stale one is read in its own window, not back to the stale one's bars", async () => {
    const { result, marks } = await withSelectedMarks(ch, (logged) => new BarStore(logged, "1m").latestMany(["MLHIST", "MLSTALE"], 20));
    expect(result.get("MLHIST")!.map((b) => b.close)).toEqual(Array.from({ length: 20 }, (_, i) => HISTORY - 20 + i));
    expect(result.get("MLSTALE")!.map((b) => b.close)).toEqual(Array.from({ length: 20 }, (_, i) => 10 + i));
    // Before: 67 granules in a run here (MLHIST read from 300 days back, the stale symbol's window); 4 now.
    expect(marks).toBeLessThanOrEqual(8);
  });

  it("a symbol short in its window is read again in wider ones, never in its whole history", async () => {
    const gap = await new BarStore(ch, "1m").latest("MLGAP", 20);
    // Its 5 recent bars, then the 15 latest of the 40 before the gap (close = minutes before the last, less the gap).
    expect(gap.map((b) => b.close)).toEqual([...Array.from({ length: 15 }, (_, i) => 19 - i), 4, 3, 2, 1, 0]);
    // MLSPARSE has one bar in 300 x 3 minutes before its last: it answers that one, its history far back unread
    // (before: [2, 1, 0], read again without a bound).
    const { result, marks } = await withSelectedMarks(ch, (logged) => new BarStore(logged, "1m").latest("MLSPARSE", 3));
    expect(result.map((b) => b.close)).toEqual([0]);
    // Three windows (3, 30, 300 x n minutes), 7 granules in a run here.
    expect(marks).toBeLessThanOrEqual(12);
  });
});
