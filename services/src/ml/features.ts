/**
 * Features from OHLCV bars, computed exactly as the training job computes them
 * (ml/trading_ml/features.py; definitions in ml/README.md). tests/ml/features-parity.test.ts runs
 * both on the same bars and compares every value. The row of bar t uses bars <= t only.
 */

/** The numeric fields the features read (a bar of market_candles or a trading `Bar` parsed to numbers). */
export interface OhlcvBar {
  openTime: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export const FEATURE_NAMES = [
  "ret_1",
  "ret_5",
  "ret_15",
  "ret_60",
  "vol_15",
  "vol_60",
  "rsi_14",
  "volume_z_20",
  "range_15",
  "channel_pos_20",
  "ma_gap_20",
] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];

/** Bars before the first complete row: ret_60 and vol_60 look 60 bars back (61 bars needed). */
export const LOOKBACK = 60;

function mean(xs: number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Population standard deviation (numpy's default ddof=0), two-pass like numpy. */
function std(xs: number[]): number {
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / xs.length);
}

const field = (bars: readonly OhlcvBar[], from: number, to: number, f: (b: OhlcvBar) => number): number[] => {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(f(bars[i]));
  return out;
};

/** Values by name for bar `t`, or undefined when fewer than LOOKBACK bars precede it. */
export function featuresAt(bars: readonly OhlcvBar[], t: number): Record<FeatureName, number> | undefined {
  if (t < LOOKBACK || t >= bars.length) return undefined;
  const c = (i: number) => bars[i].close;
  const logRet = (i: number, k: number) => Math.log(c(i) / c(i - k));
  const returns = (k: number) => {
    const r: number[] = [];
    for (let i = t - k + 1; i <= t; i++) r.push(logRet(i, 1));
    return r;
  };
  let up = 0;
  let down = 0;
  for (let i = t - 13; i <= t; i++) {
    const d = c(i) - c(i - 1);
    if (d > 0) up += d;
    else down += -d;
  }
  const volumes = field(bars, t - 19, t, (b) => b.volume);
  const vs = std(volumes);
  const lows = field(bars, t - 19, t, (b) => b.low);
  const highs = field(bars, t - 19, t, (b) => b.high);
  const lo = Math.min(...lows);
  const span = Math.max(...highs) - lo;
  return {
    ret_1: logRet(t, 1),
    ret_5: logRet(t, 5),
    ret_15: logRet(t, 15),
    ret_60: logRet(t, 60),
    vol_15: std(returns(15)),
    vol_60: std(returns(60)),
    rsi_14: up + down > 0 ? (100 * up) / (up + down) : 50,
    volume_z_20: vs > 0 ? (bars[t].volume - mean(volumes)) / vs : 0,
    range_15: mean(field(bars, t - 14, t, (b) => (b.high - b.low) / b.close)),
    channel_pos_20: span > 0 ? (c(t) - lo) / span : 0.5,
    ma_gap_20: c(t) / mean(field(bars, t - 19, t, (b) => b.close)) - 1,
  };
}

/** The model's input row in the order of `names` (the order the model was trained with). */
export function toRow(values: Record<FeatureName, number>, names: readonly string[]): number[] {
  return names.map((n) => values[n as FeatureName]);
}

/** Names a model needs that this code cannot compute (a model trained by a newer feature set). */
export function unknownFeatures(names: readonly string[]): string[] {
  const known = new Set<string>(FEATURE_NAMES);
  return names.filter((n) => !known.has(n));
}

/**
 * Why bars cannot feed the features, or undefined when they can: too few bars, unordered or
 * duplicate times, or a value that is not a positive finite number (volume may be 0).
 */
export function barsProblem(bars: readonly OhlcvBar[]): string | undefined {
  if (bars.length < LOOKBACK + 1) return `needs ${LOOKBACK + 1} bars, has ${bars.length}`;
  for (let i = 0; i < bars.length; i++) {
    const b = bars[i];
    if (i > 0 && !(b.openTime > bars[i - 1].openTime)) return `bars are not in strictly increasing time at index ${i}`;
    for (const k of ["high", "low", "close"] as const) if (!(Number.isFinite(b[k]) && b[k] > 0)) return `bar ${i} has ${k} ${b[k]}`;
    if (!(Number.isFinite(b.volume) && b.volume >= 0)) return `bar ${i} has volume ${b.volume}`;
    if (b.high < b.low) return `bar ${i} has high < low`;
  }
  return undefined;
}
