/**
 * Bars from ClickHouse `market_candles` (written by data-bridge). ReplacingMergeTree keeps
 * duplicates until a merge, so the newest insert per open_time wins (argMax on inserted_at), which
 * also works on Debian's 18.16.
 *
 * Serving reads the last bars of every requested symbol in ONE query (`latestMany`), and only a
 * recent window of them: it had been one query per symbol, each folding the symbol's whole
 * history. Timers around each step of POST /internal/predict (3 symbols, 6000 bars each, load 20,
 * ClickHouse shared with another test file) put ~250 ms of a ~310 ms request in those reads; the
 * cost grows with the history (bench/ml-bars.ts: 1343 ms -> 398 ms p50 at 200k bars per symbol).
 */
import type { ClickHouseKitClient } from "../../kit";
import type { OhlcvBar } from "../../ml/features";
import { intervalMs } from "../../trading/types";

export interface SymbolBar extends OhlcvBar {
  symbol: string;
  open: number;
}

interface Row {
  symbol?: string;
  t: string | number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

const BAR_COLUMNS = `toUInt64(toUnixTimestamp(open_time)) * 1000 AS t,
  argMax(open, inserted_at) AS open, argMax(high, inserted_at) AS high, argMax(low, inserted_at) AS low,
  argMax(close, inserted_at) AS close, argMax(volume, inserted_at) AS volume`;
/** `IN (subquery)`: usable by the primary key on 18.16 (an array parameter in `IN` is not; has() scans all). */
const IN_SYMBOLS = "symbol IN (SELECT arrayJoin({symbols:Array(String)}))";
/**
 * Each symbol's latest bar time, kept as candles are written (market_candles_latest, ClickHouse migration
 * 0025): max(open_time) over market_candles read every bar of the symbols at each prediction, a scalar
 * subquery 18.16 counts neither in read_rows nor against max_rows_to_read (session 44).
 */
const LATEST_PER_SYMBOL = `SELECT maxMerge(last_open_time) AS last FROM market_candles_latest WHERE ${IN_SYMBOLS} AND timeframe = {tf:String} GROUP BY symbol`;
/** Window read per symbol, in multiples of the bars asked for (room for a few gaps). */
const WINDOW_BARS_FACTOR = 3;

const toBar = (symbol: string, r: Row): SymbolBar => ({
  symbol,
  openTime: Number(r.t),
  open: Number(r.open),
  high: Number(r.high),
  low: Number(r.low),
  close: Number(r.close),
  volume: Number(r.volume),
});

export class BarStore {
  constructor(
    private readonly ch: ClickHouseKitClient,
    private readonly interval: string,
  ) {}

  /** The last `n` bars of `symbol`, oldest first. */
  async latest(symbol: string, n: number): Promise<SymbolBar[]> {
    const rows = await this.ch.query<Row>(
      `SELECT t, open, high, low, close, volume FROM (
         SELECT ${BAR_COLUMNS}
           FROM market_candles WHERE symbol = {symbol:String} AND timeframe = {tf:String}
          GROUP BY open_time ORDER BY open_time DESC LIMIT {n:UInt32}
       ) ORDER BY t`,
      { symbol, tf: this.interval, n },
    );
    return rows.map((r) => toBar(symbol, r));
  }

  /**
   * The last `n` bars of each symbol (oldest first; a symbol without bars maps to []), in one
   * query. The primary key (symbol, timeframe, open_time) bounds the read to the window from
   * WINDOW_BARS_FACTOR x n intervals before the oldest of the symbols' latest bars; a symbol whose
   * gaps leave fewer than n bars in that window is read again without the bound.
   */
  async latestMany(symbols: readonly string[], n: number): Promise<Map<string, SymbolBar[]>> {
    const windowSeconds = Math.ceil((WINDOW_BARS_FACTOR * n * intervalMs(this.interval)) / 1000);
    const out = await this.many(symbols, n, `AND open_time >= (SELECT min(last) FROM (${LATEST_PER_SYMBOL})) - {windowSeconds:UInt32}`, windowSeconds);
    const short = symbols.filter((s) => (out.get(s)?.length ?? 0) < n);
    if (short.length) for (const [s, b] of await this.many(short, n, "", 0)) out.set(s, b);
    return out;
  }

  private async many(symbols: readonly string[], n: number, bound: string, windowSeconds: number): Promise<Map<string, SymbolBar[]>> {
    const rows = await this.ch.query<Row & { symbol: string }>(
      `SELECT symbol, t, open, high, low, close, volume FROM (
         SELECT symbol, ${BAR_COLUMNS}
           FROM market_candles WHERE ${IN_SYMBOLS} AND timeframe = {tf:String} ${bound}
          GROUP BY symbol, open_time ORDER BY symbol, open_time DESC LIMIT {n:UInt32} BY symbol
       ) ORDER BY symbol, t`,
      { symbols: [...symbols], tf: this.interval, n, windowSeconds },
    );
    const out = new Map<string, SymbolBar[]>(symbols.map((s) => [s, []]));
    for (const r of rows) out.get(r.symbol)?.push(toBar(r.symbol, r));
    return out;
  }

  /** Training data: the last `perSymbol` bars of each symbol. */
  async history(symbols: readonly string[], perSymbol: number): Promise<SymbolBar[]> {
    const out: SymbolBar[] = [];
    for (const s of symbols) out.push(...(await this.latest(s, perSymbol)));
    return out;
  }
}
