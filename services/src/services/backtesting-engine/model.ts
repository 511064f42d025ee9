/**
 * Data access for the `ml-model` strategy: the model ml-predictor serves (the promoted one in the
 * shared model registry, PostgreSQL `ml_models`), loaded once per version in this replica, and its
 * score for every bar of a series (services/src/ml/scores.ts). Without a promoted model, with one
 * trained on another bar interval, or on market bars (ClickHouse, replay) within the bars the model
 * was fit on, the job fails naming the field: there its scores would already know the outcomes.
 */
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { ParameterError, type BarSeries } from "../../backtest";
import { loadModel, type LoadedModel } from "../../ml/model";
import { ModelRegistry, type RegistryDb } from "../../ml/registry";
import { modelScores } from "../../ml/scores";

/** `recorded`: the series is market data (not generated), which the model may have been trained on. */
export type ScoreBars = (series: BarSeries, recorded: boolean) => Promise<BarSeries>;

interface Loaded {
  model: LoadedModel;
  intervalMs: number;
  /** Open times of the first training bar and of the last bar a training label looked at. */
  trainedOn: { from: number; until: number };
}

export class PromotedModelScorer {
  private readonly registry: ModelRegistry;
  private loaded: Promise<Loaded> | undefined;
  private loadedVersion: string | undefined;

  constructor(db: RegistryDb) {
    this.registry = new ModelRegistry(db);
  }

  private async current(): Promise<Loaded> {
    const version = await this.registry.promotedVersion();
    if (!version) throw new ParameterError("strategy", "ml-model needs a promoted model: train one and promote it (POST /api/ml/models/{version}/promote)");
    if (version !== this.loadedVersion || !this.loaded) {
      const previous = this.loaded;
      this.loadedVersion = version;
      this.loaded = (async () => {
        const m = await this.registry.promoted();
        if (!m || m.version !== version) throw new Error(`promoted model changed while loading ${version}; retry`);
        const trainedOn = { from: Date.parse(m.trainingWindow.from), until: Date.parse(m.trainingWindow.to) + m.horizonBars * m.intervalMs };
        return { model: await loadModel(m.version, m.artifact, m.features, m.artifactSha256), intervalMs: m.intervalMs, trainedOn };
      })();
      this.loaded.catch(() => (this.loaded = undefined));
      void previous?.then((p) => p.model.close()).catch(() => undefined);
    }
    return this.loaded;
  }

  /** The version `score` follows now: the promoted model's (undefined when none is). */
  readonly version = (): Promise<string | undefined> => this.registry.promotedVersion();

  /** The series with the promoted model's score per bar attached (BarSeries.model). */
  readonly score: ScoreBars = async (series, recorded) => {
    const { model, intervalMs, trainedOn } = await this.current();
    if (intervalMs !== series.intervalMs)
      throw new ParameterError("interval", `the promoted model ${model.version} was trained on ${intervalMs / 1000} s bars, the backtest asks for ${series.intervalMs / 1000} s bars`);
    const n = series.time.length;
    // Time alone, whatever the symbol: markets move together, and the training bars' outcomes leak across them.
    if (recorded && n > 0 && series.time[0] <= trainedOn.until && series.time[n - 1] >= trainedOn.from) {
      const iso = (t: number) => new Date(t).toISOString();
      throw new ParameterError("period", `overlaps the bars the promoted model ${model.version} was trained on (${iso(trainedOn.from)} to ${iso(trainedOn.until)}, horizon included): its scores there are in-sample; backtest a period outside it`);
    }
    const score = await modelScores(series, model, () => yieldToLoop());
    return { ...series, model: { version: model.version, score } };
  };

  async close(): Promise<void> {
    await this.loaded?.then((p) => p.model.close()).catch(() => undefined);
  }
}
