/** ml-predictor's Prometheus metrics (on the kit's per-app registry, served at /metrics). */
import { Counter, Gauge, type Registry } from "prom-client";
import type { ModelServing } from "./serving";

export function predictorMetrics(registry: Registry, serving: ModelServing) {
  const predictions = new Counter({
    name: "ml_predictions_total",
    help: "Predictions served, by model version",
    labelNames: ["model_version"],
    registers: [registry],
  });
  const refusals = new Counter({
    name: "ml_prediction_refusals_total",
    help: "Prediction requests refused: NO_PROMOTED_MODEL, MODEL_TOO_OLD, MISSING_FEATURES, STALE_BARS",
    labelNames: ["reason"],
    registers: [registry],
  });
  const barStaleness = new Gauge({
    name: "ml_bar_staleness_seconds",
    help: "Age of the latest bar used for a symbol at its last prediction",
    labelNames: ["symbol"],
    registers: [registry],
  });
  new Gauge({
    name: "ml_model_age_seconds",
    help: "Seconds since the served model was trained (staleness; refused above ML_MAX_MODEL_AGE_HOURS)",
    registers: [registry],
    collect() {
      const m = serving.current;
      this.reset();
      if (m) this.set((Date.now() - Date.parse(m.record.trainedAt)) / 1000);
    },
  });
  new Gauge({
    name: "ml_prediction_drift_psi",
    help: "Population stability index of the served predictions (the last 2000 bars predicted, each symbol's bar once) vs the out-of-sample predictions at training",
    registers: [registry],
    collect() {
      this.reset();
      const v = serving.current?.drift.value();
      if (v !== undefined) this.set(v);
    },
  });
  new Gauge({
    name: "ml_model_info",
    help: "The served model (value 1), with its version and whether its validation showed an edge",
    labelNames: ["model_version", "has_edge"],
    registers: [registry],
    collect() {
      this.reset();
      const m = serving.current;
      if (m) this.set({ model_version: m.record.version, has_edge: String(m.record.hasEdge) }, 1);
    },
  });
  return { predictions, refusals, barStaleness };
}
export type PredictorMetrics = ReturnType<typeof predictorMetrics>;
