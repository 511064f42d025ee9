import type { RunResult } from "./engine";

const YEAR_MS = 365 * 86_400_000; // crypto trades every day of the year

export interface Metrics {
  bars: number;
  trades: number;
  initialCash: number;
  finalEquity: number;
  totalReturn: number;
  /** Compound annual growth rate over the bars' time span. */
  cagr: number;
  /** Annualised standard deviation of bar returns. */
  volatility: number;
  /** Annualised, risk-free rate 0. */
  sharpe: number;
  /** Annualised, downside deviation against 0. */
  sortino: number;
  /** Largest peak-to-trough loss as a fraction of the peak (0.25 = -25 %). */
  maxDrawdown: number;
  /** Longest stretch under a previous peak, in bars and milliseconds. */
  maxDrawdownBars: number;
  maxDrawdownDurationMs: number;
  /** Winning trades / closed trades. */
  winRate: number;
  /** Gross profit / gross loss (Infinity without a losing trade, 0 without trades). */
  profitFactor: number;
  /** Fraction of bars with a position. */
  exposure: number;
  /** Traded notional / initial cash. */
  turnover: number;
  fees: number;
}

/**
 * Performance figures of a run; `intervalMs` is the bar length (annualisation of bar returns).
 * `time`, the bars' open times, gives the calendar span: bars with gaps between them (a feed that
 * stopped, a market closed) cover more time than their count, and CAGR and drawdown durations
 * counted in bars overstated the growth rate and understated the time under water.
 */
export function computeMetrics(r: RunResult, intervalMs: number, time?: Float64Array): Metrics {
  const eq = r.equity;
  const n = eq.length;
  let mean = 0;
  let m2 = 0;
  let down = 0;
  let prev = r.initialCash;
  let peak = r.initialCash;
  let maxDd = 0;
  let underSince = -1;
  let longest = 0;
  let longestMs = 0;
  const spanMs = (from: number, to: number) => (time && time.length === n ? time[to] - time[from] : (to - from) * intervalMs);
  for (let i = 0; i < n; i++) {
    const ret = prev !== 0 ? eq[i] / prev - 1 : 0;
    prev = eq[i];
    const d = ret - mean;
    mean += d / (i + 1);
    m2 += d * (ret - mean);
    if (ret < 0) down += ret * ret;
    if (eq[i] >= peak) {
      peak = eq[i];
      if (underSince >= 0) {
        longest = Math.max(longest, i - underSince);
        longestMs = Math.max(longestMs, spanMs(underSince, i));
      }
      underSince = -1;
    } else {
      if (underSince < 0) underSince = i;
      const dd = (peak - eq[i]) / peak;
      if (dd > maxDd) maxDd = dd;
    }
  }
  if (underSince >= 0) {
    longest = Math.max(longest, n - underSince);
    longestMs = Math.max(longestMs, spanMs(underSince, n - 1) + intervalMs);
  }
  const perYear = YEAR_MS / intervalMs;
  const std = n > 1 ? Math.sqrt(m2 / (n - 1)) : 0;
  const downside = n > 0 ? Math.sqrt(down / n) : 0;
  const final = r.finalEquity;
  const years = (n > 0 ? spanMs(0, n - 1) + intervalMs : 0) / YEAR_MS;
  let wins = 0;
  let grossWin = 0;
  let grossLoss = 0;
  for (const t of r.trades) {
    if (t.pnl > 0) { wins++; grossWin += t.pnl; } else grossLoss -= t.pnl;
  }
  return {
    bars: n,
    trades: r.trades.length,
    initialCash: r.initialCash,
    finalEquity: final,
    totalReturn: final / r.initialCash - 1,
    cagr: years > 0 && final > 0 ? Math.pow(final / r.initialCash, 1 / years) - 1 : 0,
    volatility: std * Math.sqrt(perYear),
    sharpe: std > 0 ? (mean / std) * Math.sqrt(perYear) : 0,
    sortino: downside > 0 ? (mean / downside) * Math.sqrt(perYear) : 0,
    maxDrawdown: maxDd,
    maxDrawdownBars: longest,
    maxDrawdownDurationMs: longestMs,
    winRate: r.trades.length > 0 ? wins / r.trades.length : 0,
    profitFactor: grossLoss > 0 ? grossWin / grossLoss : grossWin > 0 ? Infinity : 0,
    exposure: n > 0 ? r.exposureBars / n : 0,
    turnover: r.turnover / r.initialCash,
    fees: r.fees,
  };
}

/** Drawdown per bar (0 at a peak, 0.1 = 10 % under it), for charts. */
export function drawdownCurve(equity: Float64Array, initialCash: number): Float64Array {
  const out = new Float64Array(equity.length);
  let peak = initialCash;
  for (let i = 0; i < equity.length; i++) {
    if (equity[i] > peak) peak = equity[i];
    out[i] = peak > 0 ? (peak - equity[i]) / peak : 0;
  }
  return out;
}
