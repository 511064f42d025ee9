/** risk-analyzer's data access: candle closes from ClickHouse (`market_candles`, written by data-bridge). */
import type { ClickHouseKitClient } from "../../kit";

/**
 * The last `lookback + 1` closes of `symbol` at one bar interval, oldest first (latest insert wins per
 * candle). One timeframe: grouped by open time alone, 1h bars stored next to the 1m feed mixed
 * 1-hour returns into the 1-minute series on every hour.
 */
export async function candleCloses(ch: ClickHouseKitClient, symbol: string, timeframe: string, lookback: number): Promise<number[]> {
  // {name:Type} placeholders bound by the kit, never string concatenation of input into SQL.
  const rows = await ch.query<{ close: number }>(
    `SELECT close FROM (
       SELECT open_time, argMax(close, inserted_at) AS close FROM market_candles
        WHERE symbol = {symbol:String} AND timeframe = {timeframe:String} GROUP BY open_time ORDER BY open_time DESC LIMIT {n:UInt32}
     ) ORDER BY open_time`,
    { symbol, timeframe, n: lookback + 1 },
  );
  return rows.map((r) => Number(r.close));
}
