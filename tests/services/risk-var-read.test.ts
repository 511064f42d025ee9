/**
 * risk-analyzer's VaR closes (`GET /api/risk/var`, any trader) on a real ClickHouse (18.16): the read
 * folds the window its lookback needs before the symbol's latest candle, not the symbol's whole
 * history. Before (found by session 38's hunt), every request grouped every candle of the symbol
 * whatever its lookback: about 220 MB of ClickHouse memory and a second over 2.5M 1m candles.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { clickHouseUnder, migratedClickHouse } from "../helpers/schemas";
import { withSelectedMarks } from "../helpers/query-log";
import { candleCloses } from "../../services/src/services/risk-analyzer/data";

const srv = useServers("clickhouse");
let ch: Awaited<ReturnType<typeof migratedClickHouse>>;
const HISTORY = 600_000;
const LAST = "2026-03-01 00:00:00";

beforeAll(async () => {
  ch = await migratedClickHouse(srv.clickhouse.env);
  // 600,000 1m candles of VARHIST ending at LAST, close = 100 + minute index % 97; the last candle
  // written twice (the later insert wins), and a 1h and a 1w candle beside them (other timeframes).
  await ch.command(
    `INSERT INTO market_candles (symbol, timeframe, open_time, open, high, low, close, volume, trades, source, inserted_at)
     SELECT 'VARHIST', '1m', toDateTime('${LAST}') - (${HISTORY - 1} - number) * 60, 1, 1, 1, 100 + (number % 97), 1, 1, 'test', toDateTime('2026-03-02 00:00:00')
       FROM numbers(${HISTORY})`,
  );
  await ch.command(
    `INSERT INTO market_candles (symbol, timeframe, open_time, open, high, low, close, volume, trades, source, inserted_at)
     VALUES ('VARHIST', '1m', '${LAST}', 1, 1, 1, 5000, 1, 1, 'test', '2026-03-03 00:00:00'),
            ('VARHIST', '1h', '${LAST}', 1, 1, 1, 7, 1, 1, 'test', '2026-03-03 00:00:00'),
            ('VARHIST', '1w', '${LAST}', 1, 1, 1, 9, 1, 1, 'test', '2026-03-03 00:00:00')`,
  );
}, 300_000);
afterAll(async () => ch?.close());

const closeAt = (number: number) => 100 + (number % 97);

describe("VaR closes read the window they need", () => {
  it("the last lookback + 1 closes, oldest first, latest insert per candle, in 30 MB of ClickHouse memory", async () => {
    const closes = await candleCloses(clickHouseUnder(ch, { max_memory_usage: "30000000" }), "VARHIST", "1m", 500);
    const expected = Array.from({ length: 501 }, (_, i) => closeAt(HISTORY - 501 + i));
    expected[500] = 5000;
    expect(closes).toEqual(expected);
  });

  it("a lookback longer than the history, or an interval whose window reaches before 1970, reads all there is", async () => {
    expect(await candleCloses(ch, "VARHIST", "1h", 10)).toEqual([7]);
    // 300,003 weeks before 2026 (the bound is clamped to 1970, where an unsigned DateTime would wrap round).
    expect(await candleCloses(ch, "VARHIST", "1w", 100_000)).toEqual([9]);
    expect(await candleCloses(ch, "VARHIST", "999w", 100_000)).toEqual([]);
    const all = await candleCloses(ch, "VARHIST", "1m", 100_000);
    expect(all).toHaveLength(100_001);
    expect(all[0]).toBe(closeAt(HISTORY - 100_001));
  });

  it("a gap leaves the closes inside the window: the VaR is over those, not the history before the gap", async () => {
    await ch.command(
      `INSERT INTO market_candles (symbol, timeframe, open_time, open, high, low, close, volume, trades, source, inserted_at)
       VALUES ('VARGAP', '1m', '2026-03-01 00:00:00', 1, 1, 1, 10, 1, 1, 'test', now()), ('VARGAP', '1m', '2026-03-01 00:01:00', 1, 1, 1, 11, 1, 1, 'test', now()),
              ('VARGAP', '1m', '2026-03-01 05:00:00', 1, 1, 1, 12, 1, 1, 'test', now()), ('VARGAP', '1m', '2026-03-01 05:01:00', 1, 1, 1, 13, 1, 1, 'test', now())`,
    );
    // Three closes asked: the window is 3 x 3 minutes before 05:01, holding two.
    expect(await candleCloses(ch, "VARGAP", "1m", 2)).toEqual([12, 13]);
    // Enough lookback to span the gap reads across it.
    expect(await candleCloses(ch, "VARGAP", "1m", 200)).toEqual([10, 11, 12, 13]);
  });

  it("the window's start is read from the latest candle kept per symbol, not from the symbol's history (session 44)", async () => {
    await ch.client.command({ query: "OPTIMIZE TABLE market_candles FINAL" });
    const { result, marks } = await withSelectedMarks(ch, (logged) => candleCloses(logged, "VARHIST", "1m", 10));
    expect(result).toHaveLength(11);
    expect(result[10]).toBe(5000);
    // Before: 166 granules in a run here (a scalar max(open_time) over the 600,000 candles, which 18.16
    // leaves out of read_rows and max_rows_to_read); now 8: the window's granules and a row of each of
    // market_candles_latest's parts, whatever the history's length.
    expect(marks).toBeLessThanOrEqual(12);
  });
});
