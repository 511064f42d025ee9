/**
 * The prediction API shared by ml-predictor and anything that replays history (the backtester):
 * a loaded model plus its registry metadata, turning each symbol's latest bars into
 * P(up over the model's horizon) with the exact features that produced it.
 * It refuses, with a typed error, a model older than the allowed age and bars that cannot give
 * every feature the model needs (too few, unordered, non-finite, or stale).
 */
import { barsProblem, featuresAt, toRow, type FeatureName, type OhlcvBar } from "./features";
import type { LoadedModel } from "./model";

export interface ModelMeta {
  version: string;
  trainedAt: string;
  horizonBars: number;
  intervalMs: number;
  features: readonly string[];
}

export type RefusalReason = "MODEL_TOO_OLD" | "MISSING_FEATURES" | "STALE_BARS";

export class PredictionRefused extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
    readonly symbol?: string,
  ) {
    super(message);
  }
}

export interface Prediction {
  symbol: string;
  modelVersion: string;
  /** Open time (epoch ms) of the last bar used. */
  barTime: number;
  /** P(close `horizonBars` bars after barTime > close at barTime). */
  probabilityUp: number;
  horizonBars: number;
  features: Record<FeatureName, number>;
}

export interface PredictOptions {
  now?: number;
  /** Refuse a model trained longer ago than this (ms). */
  maxModelAgeMs?: number;
  /** Refuse bars whose last bar opened longer ago than this (ms). */
  maxBarAgeMs?: number;
}

export function modelAgeMs(meta: ModelMeta, now = Date.now()): number {
  return now - Date.parse(meta.trainedAt);
}

export class Predictor {
  constructor(
    readonly model: LoadedModel,
    readonly meta: ModelMeta,
  ) {}

  /** One prediction per symbol from its bars (oldest first; only the last bar is predicted). */
  async predict(inputs: ReadonlyArray<{ symbol: string; bars: readonly OhlcvBar[] }>, opts: PredictOptions = {}): Promise<Prediction[]> {
    const now = opts.now ?? Date.now();
    if (opts.maxModelAgeMs !== undefined && modelAgeMs(this.meta, now) > opts.maxModelAgeMs) {
      const hours = (modelAgeMs(this.meta, now) / 3_600_000).toFixed(1);
      throw new PredictionRefused(
        "MODEL_TOO_OLD",
        `model ${this.meta.version} was trained ${hours} h ago, more than the allowed ${(opts.maxModelAgeMs / 3_600_000).toFixed(1)} h: retrain and promote a newer model`,
      );
    }
    const rows: number[][] = [];
    const prepared = inputs.map(({ symbol, bars }) => {
      const problem = barsProblem(bars);
      if (problem) throw new PredictionRefused("MISSING_FEATURES", `${symbol}: cannot compute the model's features: ${problem}`, symbol);
      const last = bars[bars.length - 1];
      if (opts.maxBarAgeMs !== undefined && now - last.openTime > opts.maxBarAgeMs)
        throw new PredictionRefused(
          "STALE_BARS",
          `${symbol}: the latest bar opened at ${new Date(last.openTime).toISOString()}, older than the allowed ${Math.round(opts.maxBarAgeMs / 1000)} s`,
          symbol,
        );
      const features = featuresAt(bars, bars.length - 1)!;
      const row = toRow(features, this.meta.features);
      const bad = this.meta.features.filter((_, i) => !Number.isFinite(row[i]));
      if (bad.length) throw new PredictionRefused("MISSING_FEATURES", `${symbol}: features not finite: ${bad.join(", ")}`, symbol);
      rows.push(row);
      return { symbol, barTime: last.openTime, features };
    });
    const p = await this.model.predict(rows);
    return prepared.map((x, i) => ({
      ...x,
      modelVersion: this.meta.version,
      probabilityUp: p[i],
      horizonBars: this.meta.horizonBars,
    }));
  }
}
