/**
 * Indicators over float64 columns, one pass each. Values before an indicator has its full window
 * are NaN (every comparison with NaN is false, so no signal fires on a partial window).
 */

/**
 * Simple moving average with a compensated (Neumaier) running sum: O(n) like a plain running sum,
 * but without its drift over millions of bars, so it stays within an ulp or two of the exactly
 * rounded window sum backtrader computes with `math.fsum`.
 */
export function sma(x: Float64Array, window: number, out = new Float64Array(x.length)): Float64Array {
  let sum = 0;
  let comp = 0;
  for (let i = 0; i < x.length; i++) {
    let v = x[i];
    let t = sum + v;
    comp += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
    sum = t;
    if (i >= window) {
      v = -x[i - window];
      t = sum + v;
      comp += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
      sum = t;
    }
    out[i] = i >= window - 1 ? (sum + comp) / window : NaN;
  }
  return out;
}

/** Exponential moving average, alpha = 2 / (window + 1), seeded with the SMA of the first window. */
export function ema(x: Float64Array, window: number, out = new Float64Array(x.length)): Float64Array {
  const alpha = 2 / (window + 1);
  let seed = 0;
  let prev = NaN;
  for (let i = 0; i < x.length; i++) {
    if (i < window - 1) {
      seed += x[i];
      out[i] = NaN;
    } else if (i === window - 1) {
      prev = (seed + x[i]) / window;
      out[i] = prev;
    } else {
      prev = prev + alpha * (x[i] - prev);
      out[i] = prev;
    }
  }
  return out;
}

/** Wilder's RSI (0..100); NaN until `window` changes have been seen. */
export function rsi(x: Float64Array, window: number, out = new Float64Array(x.length)): Float64Array {
  let gain = 0;
  let loss = 0;
  out.fill(NaN, 0, Math.min(x.length, window));
  for (let i = 1; i < x.length; i++) {
    const d = x[i] - x[i - 1];
    const g = d > 0 ? d : 0;
    const l = d < 0 ? -d : 0;
    if (i <= window) {
      gain += g / window;
      loss += l / window;
      if (i < window) continue;
    } else {
      gain = (gain * (window - 1) + g) / window;
      loss = (loss * (window - 1) + l) / window;
    }
    out[i] = loss === 0 ? (gain === 0 ? 50 : 100) : 100 - 100 / (1 + gain / loss);
  }
  return out;
}

/**
 * Highest value of the `window` bars *before* bar i (excluded), with a monotonic deque: O(n).
 * Breakout rules compare today's close with the previous window's extreme.
 */
export function priorRollingMax(x: Float64Array, window: number, out = new Float64Array(x.length)): Float64Array {
  return priorRollingExtreme(x, window, out, (a, b) => a >= b);
}
export function priorRollingMin(x: Float64Array, window: number, out = new Float64Array(x.length)): Float64Array {
  return priorRollingExtreme(x, window, out, (a, b) => a <= b);
}

function priorRollingExtreme(x: Float64Array, window: number, out: Float64Array, keeps: (a: number, b: number) => boolean): Float64Array {
  const deque = new Int32Array(x.length);
  let head = 0;
  let tail = 0;
  for (let i = 0; i < x.length; i++) {
    out[i] = i >= window ? x[deque[head]] : NaN;
    while (tail > head && keeps(x[i], x[deque[tail - 1]])) tail--;
    deque[tail++] = i;
    if (deque[head] <= i - window) head++;
  }
  return out;
}
