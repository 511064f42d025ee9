/** risk-analyzer's data access: candle closes from ClickHouse (`market_candles`, written by data-bridge). */
import type { ClickHouseKitClient } from "../../kit";
import { intervalMs } from "../../trading/types";

/** The window read, in multiples of the closes asked for (room for gaps), as ml-predictor's bars. */
const WINDOW_BARS_FACTOR = 3;

/**
 * The last `lookback + 1` closes of `symbol` at one bar interval, oldest first (latest insert wins per
 * candle). One timeframe: grouped by open time alone, 1h bars stored next to the 1m feed mixed
 * 1-hour returns into the 1-minute series on every hour.
 *
 * Only the window of WINDOW_BARS_FACTOR x (lookback + 1) intervals before the symbol's latest candle
 * is folded: the fold of the symbol's whole history cost every request, whatever its lookback, about
 * 220 MB of ClickHouse memory and a second over 2.5M candles (4.7 years of 1m bars), and any trader
 * could send it at the rate limit. Where gaps leave fewer closes in the window, the VaR is taken over
 * those (the answer's `observations`); an unbounded second read would let a gap reopen the cost.
 */
export async function candleCloses(ch: ClickHouseKitClient, symbol: string, timeframe: string, lookback: number): Promise<number[]> {
  const windowSeconds = Math.min(Math.ceil((WINDOW_BARS_FACTOR * (lookback + 1) * intervalMs(timeframe)) / 1000), Number.MAX_SAFE_INTEGER);
  // The latest candle's open time from market_candles_latest (ClickHouse migration 0025): max(open_time)
  // over market_candles read the symbol's whole history again, a scalar subquery 18.16 does not count in
  // read_rows (session 44). A symbol without candles has no row there: the bound is 1970, and nothing is read.
  // {name:Type} placeholders bound by the kit, never string concatenation of input into SQL. The
  // bound is computed in Int64 (a window longer than the history starts at 1970, never wraps round).
  const rows = await ch.query<{ close: number }>(
    `SELECT close FROM (
       SELECT open_time, argMax(close, inserted_at) AS close FROM market_candles
        WHERE symbol = {symbol:String} AND timeframe = {timeframe:String}
          AND open_time >= (SELECT toDateTime(greatest(toInt64(toUInt32(maxMerge(last_open_time))) - {windowSeconds:Int64}, 0))
                              FROM market_candles_latest WHERE symbol = {symbol:String} AND timeframe = {timeframe:String})
        GROUP BY open_time ORDER BY open_time DESC LIMIT {n:UInt32}
     ) ORDER BY open_time`,
    { symbol, timeframe, n: lookback + 1, windowSeconds },
  );
  return rows.map((r) => Number(r.close));
}
