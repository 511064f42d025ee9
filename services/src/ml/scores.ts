/**
 * A model's score for every bar of a history: P(up over the model's horizon) at bar t from the
 * features of bars <= t, exactly what ml-predictor answers live for that bar (same features, same
 * model). Used by the backtester's `ml-model` strategy, so a backtest follows the model the way the
 * orchestrator would have, without one HTTP call per bar.
 */
import { featuresAt, LOOKBACK, toRow, type OhlcvBar } from "./features";
import type { LoadedModel } from "./model";

/** The columns the features read (a backtest BarSeries has them). */
export interface OhlcvColumns {
  time: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
}

/** Rows per onnxruntime call: large enough to amortise the call, small enough to keep memory flat. */
const BATCH = 8_192;

/**
 * Scores for every bar (NaN for the first LOOKBACK bars, which cannot have every feature, and for a
 * bar whose features are not finite). `between` is awaited after each batch so a service stays
 * responsive while a long history is scored.
 */
export async function modelScores(cols: OhlcvColumns, model: Pick<LoadedModel, "features" | "predict">, between?: () => Promise<void>): Promise<Float64Array> {
  const n = cols.close.length;
  const score = new Float64Array(n).fill(Number.NaN);
  const bars: OhlcvBar[] = new Array(n);
  for (let i = 0; i < n; i++) bars[i] = { openTime: cols.time[i], high: cols.high[i], low: cols.low[i], close: cols.close[i], volume: cols.volume[i] };
  for (let start = LOOKBACK; start < n; start += BATCH) {
    const end = Math.min(n, start + BATCH);
    const rows: number[][] = [];
    const at: number[] = [];
    for (let t = start; t < end; t++) {
      const row = toRow(featuresAt(bars, t)!, model.features);
      if (row.every(Number.isFinite)) {
        rows.push(row);
        at.push(t);
      }
    }
    const p = await model.predict(rows);
    for (let k = 0; k < at.length; k++) score[at[k]] = p[k];
    await between?.();
  }
  return score;
}
