/**
 * ml-predictor (8021): serves the promoted LightGBM model (ONNX in onnxruntime-node) on features
 * computed from the latest bars in ClickHouse; keeps the model registry (PostgreSQL) with
 * promote / rollback; `train` is the retraining job. Routes: routes.ts. Metrics: metrics.ts.
 */
import { defineService, envList, Type } from "../../kit";
import { ModelRegistry } from "../../ml/registry";
import { intervalMs, SYMBOL_RE } from "../../trading/types";
import { BarStore } from "./bars";
import { predictorMetrics } from "./metrics";
import { registerRoutes } from "./routes";
import { ModelServing } from "./serving";
import { runTrainJob } from "./train-job";

export default defineService({
  name: "ml-predictor",
  config: {
    ML_INTERVAL: Type.String({ default: "1m", pattern: "^[1-9][0-9]*[smhdw]$", description: "bar interval (market_candles.timeframe)" }),
    ML_MAX_MODEL_AGE_HOURS: Type.Number({ default: 168, minimum: 0.001, description: "refuse to serve a model trained longer ago" }),
    ML_MAX_BAR_AGE_SECONDS: Type.Optional(Type.Integer({ minimum: 1, description: "refuse predictions from bars older than this (unset: no limit)" })),
    ML_RELOAD_MS: Type.Integer({ default: 10_000, minimum: 0, maximum: 86_400_000, description: "how often replicas check the registry for a new promoted model" }),
    ML_TRAIN_SYMBOLS: envList(Type.String({ pattern: SYMBOL_RE.source, description: "upper-case symbol" }), { default: ["BTCUSDT"] }),
    ML_TRAIN_BARS: Type.Integer({ default: 20_000, minimum: 500, maximum: 2_000_000, description: "bars per symbol for training" }),
    ML_HORIZON_BARS: Type.Integer({ default: 1, minimum: 1, maximum: 1440 }),
    ML_AUTO_PROMOTE: Type.Boolean({ default: true, description: "promote a trained model when it shows an out-of-sample edge" }),
    // 2 min: a switch holds the lock for milliseconds, so one held past the kit's POSTGRES_LOCK_WAIT_MS is a
    // stall; 12 attempts of its 10 s ride out a transient one (a slow statement, a failover), within the run's
    // time limit after minutes of training (catalog runTimeoutSeconds, 1 h, cut to 10 min by a 20-minute
    // schedule: stacks' mlRetrainSchedule). Longer is a stuck holder an admin must see. promotion.ts.
    ML_PROMOTE_WAIT_MS: Type.Integer({ default: 120_000, minimum: 0, maximum: 1_800_000, description: "how long the train job's promotion tries again while the model switch lock is held (another promotion or rollback) before failing the run, the model left a candidate; 0: one attempt" }),
    ML_REGIME_STRIDE: Type.Integer({ default: 10, minimum: 1, description: "index every n-th training window as a market regime" }),
    ML_PYTHON: Type.String({ default: "python3", description: "python of the training venv (scripts/ml/venv.sh)" }),
    ML_TRAINING_DIR: Type.Optional(Type.String({ description: "folder holding trading_ml/ (default: ml/ next to services/)" })),
  },
  async register(ctx) {
    const c = ctx.config;
    const registry = new ModelRegistry(ctx.app.pg);
    const serving = new ModelServing(registry, ctx.log, c.ML_RELOAD_MS);
    const metrics = predictorMetrics(ctx.metrics.registry, serving);
    const bars = new BarStore(ctx.app.clickhouse, c.ML_INTERVAL);
    registerRoutes(ctx, {
      serving,
      registry,
      bars,
      metrics,
      limits: {
        maxModelAgeMs: c.ML_MAX_MODEL_AGE_HOURS * 3_600_000,
        reloadMs: c.ML_RELOAD_MS,
        maxBarAgeMs: c.ML_MAX_BAR_AGE_SECONDS === undefined ? undefined : c.ML_MAX_BAR_AGE_SECONDS * 1000,
        interval: { name: c.ML_INTERVAL, ms: intervalMs(c.ML_INTERVAL) },
      },
    });
    ctx.onClose(() => serving.close());
    // Load the promoted model now (native add-on + session: ~0.1 s idle, seconds on a loaded host)
    // rather than on the first request; without one (or a registry not migrated yet) it loads later.
    await serving.get(true).catch((err) => ctx.log.warn({ err }, "no model loaded at start"));
  },
  commands: {
    async train(ctx) {
      const c = ctx.config;
      const result = await runTrainJob(
        {
          bars: new BarStore(ctx.app.clickhouse, c.ML_INTERVAL),
          registry: new ModelRegistry(ctx.app.pg),
          weaviate: ctx.app.datastores.isEnabled("weaviate") ? () => ctx.app.weaviate.client() : undefined,
          log: ctx.log,
        },
        {
          symbols: c.ML_TRAIN_SYMBOLS,
          barsPerSymbol: c.ML_TRAIN_BARS,
          horizon: c.ML_HORIZON_BARS,
          autoPromote: c.ML_AUTO_PROMOTE,
          python: c.ML_PYTHON,
          trainingDir: c.ML_TRAINING_DIR,
          regimeStride: c.ML_REGIME_STRIDE,
          promotion: { budgetMs: c.ML_PROMOTE_WAIT_MS, attemptMs: ctx.datastores.configs.postgres!.POSTGRES_LOCK_WAIT_MS },
        },
      );
      process.stdout.write(JSON.stringify({ version: result.model.version, promoted: result.promoted, hasEdge: result.model.hasEdge, regimesIndexed: result.regimesIndexed }) + "\n");
      return 0;
    },
  },
});
