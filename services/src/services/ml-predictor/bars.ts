/**
 * Bars from ClickHouse `market_candles` (written by data-bridge). ReplacingMergeTree keeps
 * duplicates until a merge, so the newest insert per open_time wins (argMax on inserted_at), which
 * also works on Debian's 18.16.
 *
 * Serving reads the last bars of every requested symbol in one query (`latestMany`, after a read of
 * their latest bar times), and only a recent window of each: it had been one query per symbol, each
 * folding the symbol's whole history, as training's did until session 45. Timers around each step of POST /internal/predict (3 symbols, 6000 bars each, load 20,
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
const LATEST_PER_SYMBOL = `SELECT symbol, toUInt32(maxMerge(last_open_time)) AS last FROM market_candles_latest WHERE ${IN_SYMBOLS} AND timeframe = {tf:String} GROUP BY symbol`;
/**
 * The windows read per symbol, in multiples of the bars asked for, each before the symbol's own latest
 * bar: a symbol whose gaps leave fewer than n bars in one is read again in the next, and past the last
 * answers the bars it has there. Never the whole history (session 45: training read it, and a symbol
 * short in the window, any trader's POST /api/ml/predict's included, was read again without a bound).
 */
const WINDOW_FACTORS = [3, 30, 300];

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

  /** The last `n` bars of `symbol`, oldest first (within the windows latestMany reads). */
  async latest(symbol: string, n: number): Promise<SymbolBar[]> {
    return (await this.latestMany([symbol], n)).get(symbol) ?? [];
  }

  /**
   * The last `n` bars of each symbol (oldest first; a symbol without bars maps to []), in one query
   * per window (WINDOW_FACTORS) after one of their latest bar times. Each symbol's window ends at its own latest bar
   * (market_candles_latest): the primary key (symbol, timeframe, open_time) and the month partitions
   * bound each symbol's read to its window (`window`). One start for all (the oldest of the symbols' latest
   * bars, as before) read a fresh symbol's bars back to a stale one's: a year of them for a symbol
   * asked beside one whose feed stopped a year ago.
   */
  async latestMany(symbols: readonly string[], n: number): Promise<Map<string, SymbolBar[]>> {
    const out = new Map<string, SymbolBar[]>(symbols.map((s) => [s, []]));
    if (!symbols.length) return out;
    const last = new Map(
      (await this.ch.query<{ symbol: string; last: string | number }>(LATEST_PER_SYMBOL, { symbols: [...symbols], tf: this.interval })).map((r) => [r.symbol, Number(r.last)]),
    );
    // Each symbol once: a symbol named twice would be a branch twice, its bars answered twice.
    let pending = [...out.keys()].filter((s) => last.has(s));
    for (const factor of WINDOW_FACTORS) {
      if (!pending.length) break;
      const windowSeconds = Math.ceil((factor * n * intervalMs(this.interval)) / 1000);
      for (const [s, bars] of await this.window(pending.map((s) => ({ symbol: s, from: Math.max(0, last.get(s)! - windowSeconds), last: last.get(s)! })), n)) out.set(s, bars);
      pending = pending.filter((s) => out.get(s)!.length < n);
    }
    return out;
  }

  /**
   * The last `n` bars of each symbol from its `from` to its `last` (epoch seconds, its latest bar): a
   * branch of a UNION ALL per symbol, each branch's month partitions pruned by its own window (one
   * condition ORing the symbols' windows kept every month from the oldest start on, a granule or two of
   * each; without `last`, a stale symbol's branch kept every month after it, a granule where it would be).
   */
  private async window(windows: { symbol: string; from: number; last: number }[], n: number): Promise<Map<string, SymbolBar[]>> {
    const params: Record<string, unknown> = { tf: this.interval, n };
    const each = windows.map((w, i) => {
      params[`s${i}`] = w.symbol;
      params[`f${i}`] = w.from;
      params[`l${i}`] = w.last;
      return `SELECT symbol, ${BAR_COLUMNS} FROM market_candles
               WHERE symbol = {s${i}:String} AND timeframe = {tf:String} AND open_time >= toDateTime({f${i}:UInt32}) AND open_time <= toDateTime({l${i}:UInt32})
               GROUP BY symbol, open_time ORDER BY open_time DESC LIMIT {n:UInt32}`;
    });
    const rows = await this.ch.query<Row & { symbol: string }>(
      `SELECT symbol, t, open, high, low, close, volume FROM (${each.join(" UNION ALL ")}) ORDER BY symbol, t`,
      params,
    );
    const out = new Map<string, SymbolBar[]>(windows.map((w) => [w.symbol, []]));
    for (const r of rows) out.get(r.symbol)?.push(toBar(r.symbol, r));
    return out;
  }

  /** Training data: the last `perSymbol` bars of each symbol (each symbol's own window, as serving reads). */
  async history(symbols: readonly string[], perSymbol: number): Promise<SymbolBar[]> {
    const bars = await this.latestMany(symbols, perSymbol);
    return symbols.flatMap((s) => bars.get(s) ?? []);
  }
}
