/**
 * Prediction drift: the population stability index (PSI) between the distribution of the
 * out-of-sample predictions at training time (report.reference) and the predictions served since,
 * over a sliding window of the last `size` bars predicted (each symbol's bar once). PSI =
 * sum((o - r) * ln(o / r)) over the bins; by the usual convention < 0.1 is stable, 0.1-0.25 a
 * moderate shift, > 0.25 a large one.
 */
const EPS = 1e-4;
/** Predictions needed before the PSI is reported (fewer make a histogram too noisy to compare). */
export const DRIFT_MIN_PREDICTIONS = 100;

export function psi(reference: readonly number[], observed: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < reference.length; i++) {
    const r = Math.max(reference[i], EPS);
    const o = Math.max(observed[i] ?? 0, EPS);
    s += (o - r) * Math.log(o / r);
  }
  return s;
}

/**
 * The window holds the prediction of each bar of each symbol once: `POST /api/ml/predict` is open to
 * any trader, and the same symbol's same bar gives the same prediction, so counting every call let
 * one user asking about the same bars over and over fill the window with them and set the figure
 * (found by session 43's business-logic hunt). A bar predicted again while its prediction is in the
 * window is not added again (a later model is another PredictionDrift: serving.ts makes one per load).
 */
export class PredictionDrift {
  private readonly window: { key: string; p: number }[] = [];
  private readonly keys = new Set<string>();
  constructor(
    private readonly bins: readonly number[],
    private readonly referenceFractions: readonly number[],
    private readonly size = 2000,
  ) {}

  /** The prediction `p` of `symbol`'s bar opened at `barTime` (epoch ms). */
  add(p: number, symbol: string, barTime: number): void {
    const key = `${symbol}\u0000${barTime}`;
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.window.push({ key, p });
    if (this.window.length > this.size) this.keys.delete(this.window.shift()!.key);
  }

  get count(): number {
    return this.window.length;
  }

  /** Histogram fractions of the window over the reference bins (last bin closed). */
  fractions(): number[] {
    const counts = new Array(this.bins.length - 1).fill(0);
    for (const { p } of this.window) {
      let i = this.bins.findIndex((edge, k) => k > 0 && p < edge) - 1;
      if (i < 0) i = counts.length - 1;
      counts[i]++;
    }
    return counts.map((c) => (this.window.length ? c / this.window.length : 0));
  }

  /** PSI of the window against the reference; undefined until `minCount` bars' predictions were seen. */
  value(minCount = DRIFT_MIN_PREDICTIONS): number | undefined {
    return this.window.length >= minCount ? psi(this.referenceFractions, this.fractions()) : undefined;
  }
}
