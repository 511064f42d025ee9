/**
 * Data access for the `ml-model` strategy: the model ml-predictor serves (the promoted one in the
 * shared model registry, PostgreSQL `ml_models`), loaded once per version in this replica, and its
 * score for every bar of a series (services/src/ml/scores.ts). Without a promoted model, or with
 * one trained on another bar interval, the job fails naming the field.
 */
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { ParameterError, type BarSeries } from "../../backtest";
import { loadModel, type LoadedModel } from "../../ml/model";
import { ModelRegistry, type RegistryDb } from "../../ml/registry";
import { modelScores } from "../../ml/scores";

export type ScoreBars = (series: BarSeries) => Promise<BarSeries>;

export class PromotedModelScorer {
  private readonly registry: ModelRegistry;
  private loaded: Promise<{ model: LoadedModel; intervalMs: number }> | undefined;
  private loadedVersion: string | undefined;

  constructor(db: RegistryDb) {
    this.registry = new ModelRegistry(db);
  }

  private async current(): Promise<{ model: LoadedModel; intervalMs: number }> {
    const version = await this.registry.promotedVersion();
    if (!version) throw new ParameterError("strategy", "ml-model needs a promoted ml-predictor model: train one and promote it (POST /api/ml/models/{version}/promote)");
    if (version !== this.loadedVersion || !this.loaded) {
      const previous = this.loaded;
      this.loadedVersion = version;
      this.loaded = (async () => {
        const m = await this.registry.promoted();
        if (!m || m.version !== version) throw new Error(`promoted model changed while loading ${version}; retry`);
        return { model: await loadModel(m.version, m.artifact, m.features, m.artifactSha256), intervalMs: m.intervalMs };
      })();
      this.loaded.catch(() => (this.loaded = undefined));
      void previous?.then((p) => p.model.close()).catch(() => undefined);
    }
    return this.loaded;
  }

  /** The series with the promoted model's score per bar attached (BarSeries.model). */
  readonly score: ScoreBars = async (series) => {
    const { model, intervalMs } = await this.current();
    if (intervalMs !== series.intervalMs)
      throw new ParameterError("interval", `the promoted model ${model.version} was trained on ${intervalMs / 1000} s bars, the backtest asks for ${series.intervalMs / 1000} s bars`);
    const score = await modelScores(series, model, () => yieldToLoop());
    return { ...series, model: { version: model.version, score } };
  };

  async close(): Promise<void> {
    await this.loaded?.then((p) => p.model.close()).catch(() => undefined);
  }
}
