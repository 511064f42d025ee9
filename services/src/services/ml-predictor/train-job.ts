/**
 * The retraining job (`node dist/main.js ml-predictor train`; scheduled on both targets): the last
 * ML_TRAIN_BARS bars of each ML_TRAIN_SYMBOLS from ClickHouse -> the Python training job ->
 * registry (candidate) -> market regimes of the training bars into Weaviate -> promoted when its
 * walk-forward validation shows an edge over the naive baselines (ML_AUTO_PROMOTE), otherwise left
 * a candidate with the reason logged. The promotion waits out a busy model switch lock within
 * ML_PROMOTE_WAIT_MS (./promotion.ts) before it fails the run.
 */
import type { Logger } from "pino";
import type { WeaviateClient } from "weaviate-client";
import { indexRegimes } from "../../ml/regimes";
import type { ModelRecord, ModelRegistry } from "../../ml/registry";
import { train } from "../../ml/training";
import type { BarStore, SymbolBar } from "./bars";
import { promoteWithinBudget, type PromotionBudget } from "./promotion";

export interface TrainJobOptions {
  symbols: readonly string[];
  barsPerSymbol: number;
  horizon: number;
  autoPromote: boolean;
  python?: string;
  trainingDir?: string;
  regimeStride: number;
  /** How long the promotion may wait for the model switch lock (./promotion.ts). */
  promotion: PromotionBudget;
}

export interface TrainJobResult {
  model: ModelRecord;
  promoted: boolean;
  regimesIndexed: number | "disabled";
}

export async function runTrainJob(
  deps: { bars: BarStore; registry: ModelRegistry; weaviate?: () => Promise<WeaviateClient>; log: Logger },
  o: TrainJobOptions,
): Promise<TrainJobResult> {
  const bars = await deps.bars.history(o.symbols, o.barsPerSymbol);
  const counts = Object.fromEntries(o.symbols.map((s) => [s, bars.filter((b) => b.symbol === s).length]));
  deps.log.info({ bars: counts }, "training on bars from ClickHouse");
  const { onnx, report } = await train({ bars, horizon: o.horizon, python: o.python, trainingDir: o.trainingDir });
  let model = await deps.registry.register(onnx, report, "train-job");
  const oos = report.metrics.outOfSample;
  deps.log.info(
    { modelVersion: model.version, hasEdge: report.metrics.hasEdge, auc: oos.model.auc, accuracyGain: oos.accuracyGain, logLossGain: oos.logLossGain, seconds: report.timing.totalSeconds },
    "model registered",
  );
  let regimesIndexed: number | "disabled" = "disabled";
  if (deps.weaviate) {
    const bySymbol = new Map<string, SymbolBar[]>();
    for (const b of bars) bySymbol.set(b.symbol, [...(bySymbol.get(b.symbol) ?? []), b]);
    regimesIndexed = await indexRegimes(await deps.weaviate(), { ...model, reference: report.reference.features }, bySymbol, o.regimeStride);
    deps.log.info({ modelVersion: model.version, regimes: regimesIndexed }, "market regimes indexed in weaviate");
  }
  let promoted = false;
  if (o.autoPromote && report.metrics.hasEdge) {
    model = await promoteWithinBudget(deps.registry, model.version, "walk-forward validation beat the naive baselines", { ...o.promotion, log: deps.log });
    promoted = true;
  } else {
    deps.log.warn(
      { modelVersion: model.version },
      o.autoPromote ? "not promoted: no out-of-sample edge over the naive baselines" : "not promoted: ML_AUTO_PROMOTE is off",
    );
  }
  return { model, promoted, regimesIndexed };
}
