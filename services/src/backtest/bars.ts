import { Rng } from "../trading/rng";
import { intervalMs, type Bar } from "../trading/types";

/** One symbol's bars as columns (struct of arrays): what both engines iterate over. */
export interface BarSeries {
  symbol: string;
  /** Bar length in milliseconds. */
  intervalMs: number;
  /** Open time, epoch ms. */
  time: Float64Array;
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
  /**
   * A model's score per bar, aligned with the columns (NaN where it has none): the ml-predictor
   * model's P(up) for the `ml-model` strategy, attached by whoever loads the bars (the
   * backtesting service) with the version that produced it.
   */
  model?: { version: string; score: Float64Array };
}

export function allocateSeries(symbol: string, interval: number, length: number): BarSeries {
  return {
    symbol,
    intervalMs: interval,
    time: new Float64Array(length),
    open: new Float64Array(length),
    high: new Float64Array(length),
    low: new Float64Array(length),
    close: new Float64Array(length),
    volume: new Float64Array(length),
  };
}

/** Columns from the trading core's `Bar` objects (decimal strings, e.g. a replay file or ClickHouse rows). */
export function seriesFromBars(symbol: string, bars: readonly Bar[]): BarSeries {
  const mine = bars.filter((b) => b.symbol === symbol);
  const s = allocateSeries(symbol, mine.length > 0 ? intervalMs(mine[0].interval) : 60_000, mine.length);
  mine.forEach((b, i) => {
    s.time[i] = b.openTime;
    s.open[i] = Number(b.open);
    s.high[i] = Number(b.high);
    s.low[i] = Number(b.low);
    s.close[i] = Number(b.close);
    s.volume[i] = Number(b.volume);
  });
  return s;
}

export interface SyntheticSeriesOptions {
  seed: string | number;
  symbol?: string;
  bars: number;
  /** Bar length in ms (default one minute). */
  intervalMs?: number;
  /** Open time of bar 0 (default 2024-01-01T00:00:00Z). */
  origin?: number;
  startPrice?: number;
  /** Standard deviation of a bar's log return (default 0.001). */
  volatility?: number;
  /** Prices are multiples of 10^-decimals (default 2). */
  decimals?: number;
  baseVolume?: number;
}

/**
 * Seeded log random walk straight into typed arrays (10^7 bars in about a second; the trading core's
 * `SyntheticSeries` builds decimal-string `Bar` objects, right for live feeds, far too slow here).
 * Prices are integer ticks divided by 10^decimals: the division is correctly rounded, so each value
 * is the same float64 a CSV reader (Python's `float("123.45")`) gets from the printed price. That is
 * what lets an oracle engine see bit-identical bars.
 */
export function syntheticSeries(opts: SyntheticSeriesOptions): BarSeries {
  const n = opts.bars;
  const interval = opts.intervalMs ?? 60_000;
  const origin = opts.origin ?? Date.UTC(2024, 0, 1);
  const scale = 10 ** (opts.decimals ?? 2);
  const vol = opts.volatility ?? 0.001;
  const base = opts.baseVolume ?? 1_000;
  const s = allocateSeries(opts.symbol ?? "SYNTH", interval, n);
  const rng = new Rng(`${opts.seed}|${s.symbol}`);
  let last = Math.max(1, Math.round((opts.startPrice ?? 100) * scale));
  for (let i = 0; i < n; i++) {
    const open = last;
    let close = Math.round(open * Math.exp(vol * rng.normal()));
    if (close < 1) close = 1;
    const hi = Math.max(open, close);
    const lo = Math.min(open, close);
    const high = hi + Math.round(hi * Math.abs(rng.normal()) * vol * 0.5);
    const low = Math.max(1, lo - Math.round(lo * Math.abs(rng.normal()) * vol * 0.5));
    s.time[i] = origin + i * interval;
    s.open[i] = open / scale;
    s.high[i] = high / scale;
    s.low[i] = low / scale;
    s.close[i] = close / scale;
    s.volume[i] = Math.round(base * (0.2 + 1.6 * rng.next()));
    last = close;
  }
  return s;
}

/**
 * Moves a close by one tick wherever SMA(fast) equals SMA(slow) exactly (decided in integer ticks,
 * so exactly), keeping OHLC consistent. Exact ties make crossover results depend on how each
 * engine rounds its rolling sums (the notes measured 10 ties per 10^6 bars on a 0.0001 tick); a
 * series without them is one every engine must agree on.
 */
export function breakSmaTies(s: BarSeries, decimals: number, windows: ReadonlyArray<readonly [number, number]>): number {
  const scale = 10 ** decimals;
  const ticks = Array.from(s.close, (c) => Math.round(c * scale));
  let moved = 0;
  const longest = Math.max(0, ...windows.map(([f, sl]) => Math.max(f, sl)));
  const tied = (i: number): boolean =>
    windows.some(([fast, slow]) => {
      if (fast === slow || i < slow - 1 || i < fast - 1) return false;
      let sf = 0;
      let ss = 0;
      for (let k = 0; k < slow; k++) ss += ticks[i - k];
      for (let k = 0; k < fast; k++) sf += ticks[i - k];
      return sf * slow === ss * fast;
    });
  // A move at bar i only changes windows ending at i or later: one forward pass suffices.
  for (let i = longest - 1; i < ticks.length; i++) {
    while (tied(i)) {
      ticks[i] += 1;
      moved++;
    }
  }
  for (let i = 0; i < ticks.length; i++) {
    const c = ticks[i] / scale;
    if (c === s.close[i]) continue;
    s.close[i] = c;
    if (c > s.high[i]) s.high[i] = c;
    if (i + 1 < ticks.length) {
      s.open[i + 1] = c;
      if (c > s.high[i + 1]) s.high[i + 1] = c;
      if (c < s.low[i + 1]) s.low[i + 1] = c;
    }
  }
  return moved;
}

/** The bars of `s` with open time in [from, to] (inclusive), as views (no copy). */
export function sliceSeries(s: BarSeries, from: number, to: number): BarSeries {
  let a = 0;
  while (a < s.time.length && s.time[a] < from) a++;
  let b = a;
  while (b < s.time.length && s.time[b] <= to) b++;
  return {
    symbol: s.symbol,
    intervalMs: s.intervalMs,
    time: s.time.subarray(a, b),
    open: s.open.subarray(a, b),
    high: s.high.subarray(a, b),
    low: s.low.subarray(a, b),
    close: s.close.subarray(a, b),
    volume: s.volume.subarray(a, b),
    ...(s.model ? { model: { version: s.model.version, score: s.model.score.subarray(a, b) } } : {}),
  };
}
