/** risk-analyzer's data access: candle closes from ClickHouse (`market_candles`, written by data-bridge). */
import type { ClickHouseKitClient } from "../../kit";

/** The last `lookback + 1` closes of `symbol`, oldest first (latest insert wins per candle). */
export async function candleCloses(ch: ClickHouseKitClient, symbol: string, lookback: number): Promise<number[]> {
  // {name:Type} placeholders bound by the kit, never string concatenation of input into SQL.
  const rows = await ch.query<{ close: number }>(
    `SELECT close FROM (
       SELECT open_time, argMax(close, inserted_at) AS close FROM market_candles
        WHERE symbol = {symbol:String} GROUP BY open_time ORDER BY open_time DESC LIMIT {n:UInt32}
     ) ORDER BY open_time`,
    { symbol, n: lookback + 1 },
  );
  return rows.map((r) => Number(r.close));
}
