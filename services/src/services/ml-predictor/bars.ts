/**
 * Bars from ClickHouse `market_candles` (written by data-bridge). ReplacingMergeTree keeps
 * duplicates until a merge, so the newest insert per open_time wins (argMax on inserted_at), which
 * also works on Debian's 18.16.
 */
import type { ClickHouseKitClient } from "../../kit";
import type { OhlcvBar } from "../../ml/features";

export interface SymbolBar extends OhlcvBar {
  symbol: string;
  open: number;
}

interface Row {
  t: string | number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export class BarStore {
  constructor(
    private readonly ch: ClickHouseKitClient,
    private readonly interval: string,
  ) {}

  /** The last `n` bars of `symbol`, oldest first. */
  async latest(symbol: string, n: number): Promise<SymbolBar[]> {
    const rows = await this.ch.query<Row>(
      `SELECT t, open, high, low, close, volume FROM (
         SELECT toUInt64(toUnixTimestamp(open_time)) * 1000 AS t,
                argMax(open, inserted_at) AS open, argMax(high, inserted_at) AS high, argMax(low, inserted_at) AS low,
                argMax(close, inserted_at) AS close, argMax(volume, inserted_at) AS volume
           FROM market_candles WHERE symbol = {symbol:String} AND timeframe = {tf:String}
          GROUP BY open_time ORDER BY open_time DESC LIMIT {n:UInt32}
       ) ORDER BY t`,
      { symbol, tf: this.interval, n },
    );
    return rows.map((r) => ({
      symbol,
      openTime: Number(r.t),
      open: Number(r.open),
      high: Number(r.high),
      low: Number(r.low),
      close: Number(r.close),
      volume: Number(r.volume),
    }));
  }

  /** Training data: the last `perSymbol` bars of each symbol. */
  async history(symbols: readonly string[], perSymbol: number): Promise<SymbolBar[]> {
    const out: SymbolBar[] = [];
    for (const s of symbols) out.push(...(await this.latest(s, perSymbol)));
    return out;
  }
}
