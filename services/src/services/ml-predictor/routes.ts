/**
 * ml-predictor HTTP routes.
 *   POST /predict, POST /internal/predict   {symbols: [...1-100]} -> P(up) per symbol from its latest bars
 *                                           (503 MODEL_UNAVAILABLE when the promoted model cannot be loaded)
 *   GET  /status                            served model, its age, drift, serving limits
 *   GET  /models, /models/events, /models/:version
 *   POST /models/:version/promote {reason?}                (admin)
 *   POST /models/rollback {fromVersion, reason?}           (admin) 409 PROMOTED_MODEL_CHANGED when another model is served
 * /predict is for users behind the gateway; /internal/predict for services (never proxied).
 */
import { DisplayText, HttpError, requireIdentity, ResponseObject, Type, unavailable, type ServiceContext } from "../../kit";
import { LOOKBACK } from "../../ml/features";
import { loadModel, ModelLoadError } from "../../ml/model";
import { PredictionRefused, modelAgeMs } from "../../ml/predictor";
import { regimeVector } from "../../ml/regimes";
import { RegistryError, type ModelRegistry } from "../../ml/registry";
import { SYMBOL_RE } from "../../trading/types";
import type { BarStore } from "./bars";
import type { PredictorMetrics } from "./metrics";
import type { ModelServing } from "./serving";

export interface PredictorLimits {
  maxModelAgeMs: number;
  maxBarAgeMs: number | undefined;
  /** How often the registry is checked (ML_RELOAD_MS): when a failed model load is tried again. */
  reloadMs: number;
  /** The bars this replica reads (ML_INTERVAL): a model trained on other bars is never served on them. */
  interval: { name: string; ms: number };
}

const PredictBody = Type.Object(
  { symbols: Type.Array(Type.String({ pattern: SYMBOL_RE.source }), { minItems: 1, maxItems: 100, uniqueItems: true }) },
  { additionalProperties: false },
);
const VERSION_PATTERN = "^[A-Za-z0-9._-]{1,80}$";
const Version = Type.Object({ version: Type.String({ pattern: VERSION_PATTERN }) });
// The reason goes to the model events an admin reads (kit display-text.ts: no controls, line separators or direction overrides).
const ReasonText = DisplayText({ minLength: 0, maxLength: 500, visible: false });
const Reason = Type.Object({ reason: Type.Optional(ReasonText) }, { additionalProperties: false });
// Required: a rollback that does not say which model it leaves repeats (a retried request, a double
// click, two admins) would each go one promotion further back.
const RollbackBody = Type.Object(
  { fromVersion: Type.String({ pattern: VERSION_PATTERN, description: "the promoted model this rollback leaves (409 if another is served)" }), reason: Type.Optional(ReasonText) },
  { additionalProperties: false },
);

/** Why a model cannot be served on this replica's bars (its features were computed on bars of another length), or undefined. */
function intervalMismatch(model: { version: string; intervalMs: number }, interval: PredictorLimits["interval"]): string | undefined {
  if (model.intervalMs === interval.ms) return undefined;
  return `model ${model.version} was trained on ${model.intervalMs / 1000} s bars; this service predicts from ${interval.name} bars (ML_INTERVAL): promote a model trained on ${interval.name} bars`;
}

function registryHttpError(e: unknown): never {
  if (e instanceof RegistryError) throw new HttpError(e.code === "MODEL_NOT_FOUND" ? 404 : 409, e.code, e.message, e.field);
  throw e;
}

// Responses (OpenAPI; unnamed fields are kept).
const PredictionsOut = ResponseObject({
  modelVersion: Type.String(),
  hasEdge: Type.Boolean(),
  predictions: Type.Array(ResponseObject({ symbol: Type.String(), probabilityUp: Type.Number(), barTime: Type.String() }, { description: "also close, features and the regime vector" })),
});
const StatusOut = ResponseObject({ model: Type.Unknown({ description: "the promoted model (version, trainedAt, ageSeconds, hasEdge) or null" }), loadFailure: Type.Unknown({ description: "{ version, message, since } when the promoted model cannot be loaded, else null" }), drift: Type.Unknown({ description: "{ psi, predictions } or null" }), limits: ResponseObject({}) });
const ModelOut = ResponseObject({ version: Type.String() }, { description: "A registered model: version, training window, features, walk-forward metrics, artifact SHA-256, status" });

export function registerRoutes(
  ctx: ServiceContext,
  deps: { serving: ModelServing; registry: ModelRegistry; bars: BarStore; metrics: PredictorMetrics; limits: PredictorLimits },
): void {
  const { serving, registry, bars, metrics, limits } = deps;
  // A model that failed to load is tried again at the next registry check (ML_RELOAD_MS).
  const retryAfterSeconds = Math.max(1, Math.ceil(limits.reloadMs / 1000));

  async function predict(symbols: string[]) {
    // The model check and the bars (one ClickHouse query for every symbol) are independent.
    const [served, latest] = await Promise.all([serving.get(), bars.latestMany(symbols, LOOKBACK + 1)]);
    if (!served && serving.failure) {
      metrics.refusals.inc({ reason: "MODEL_UNAVAILABLE" });
      const f = serving.failure;
      throw unavailable("MODEL_UNAVAILABLE", `the promoted model ${f.version} cannot be loaded (${f.message}); promote another or roll back`, retryAfterSeconds);
    }
    if (!served) {
      metrics.refusals.inc({ reason: "NO_PROMOTED_MODEL" });
      throw new HttpError(409, "NO_PROMOTED_MODEL", "no model is promoted: train one (the retraining job) and promote it");
    }
    const mismatch = intervalMismatch(served.record, limits.interval);
    if (mismatch) {
      metrics.refusals.inc({ reason: "MODEL_INTERVAL_MISMATCH" });
      throw new HttpError(409, "MODEL_INTERVAL_MISMATCH", mismatch);
    }
    const inputs = symbols.map((symbol) => ({ symbol, bars: latest.get(symbol) ?? [] }));
    const now = Date.now();
    try {
      const predictions = await served.predictor.predict(inputs, { now, maxModelAgeMs: limits.maxModelAgeMs, maxBarAgeMs: limits.maxBarAgeMs });
      metrics.predictions.inc({ model_version: served.record.version }, predictions.length);
      for (const p of predictions) {
        served.drift.add(p.probabilityUp, p.symbol, p.barTime);
        metrics.barStaleness.set({ symbol: p.symbol }, (now - p.barTime) / 1000);
      }
      return {
        modelVersion: served.record.version,
        trainedAt: served.record.trainedAt,
        horizonBars: served.record.horizonBars,
        intervalMs: served.record.intervalMs,
        hasEdge: served.record.hasEdge,
        predictions: predictions.map((p) => ({
          symbol: p.symbol,
          probabilityUp: p.probabilityUp,
          barTime: new Date(p.barTime).toISOString(),
          close: inputs.find((i) => i.symbol === p.symbol)!.bars.at(-1)!.close,
          features: p.features,
          regimeVector: regimeVector(p.features, served.record.features, served.record.reference.features),
        })),
      };
    } catch (e) {
      if (!(e instanceof PredictionRefused)) throw e;
      metrics.refusals.inc({ reason: e.reason });
      const field = e.symbol ? `symbols.${symbols.indexOf(e.symbol)}` : undefined;
      throw new HttpError(e.reason === "MISSING_FEATURES" ? 422 : 409, e.reason, e.message, field);
    }
  }

  ctx.app.post("/predict", { schema: { body: PredictBody, response: { 200: PredictionsOut } } }, async (req) => {
    requireIdentity(req);
    return predict(req.body.symbols);
  });
  ctx.app.post("/internal/predict", { schema: { body: PredictBody } }, async (req) => predict(req.body.symbols));

  ctx.app.get("/status", { schema: { response: { 200: StatusOut } } }, async (req) => {
    requireIdentity(req);
    const served = await serving.get();
    return {
      model: served
        ? { version: served.record.version, trainedAt: served.record.trainedAt, ageSeconds: modelAgeMs(served.record) / 1000, hasEdge: served.record.hasEdge }
        : null,
      drift: served ? { psi: served.drift.value() ?? null, predictions: served.drift.count } : null,
      loadFailure: serving.failure ?? null,
      limits: { maxModelAgeHours: limits.maxModelAgeMs / 3_600_000, maxBarAgeSeconds: limits.maxBarAgeMs === undefined ? null : limits.maxBarAgeMs / 1000 },
    };
  });

  ctx.app.get("/models", { schema: { querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) }), response: { 200: ResponseObject({ models: Type.Array(ModelOut) }) } } }, async (req) => {
    requireIdentity(req);
    return { models: await registry.list(req.query.limit ?? 50) };
  });
  ctx.app.get("/models/events", { schema: { response: { 200: ResponseObject({ events: Type.Array(ResponseObject({}, { description: "a promotion or rollback: version, action, reason, at; actor (who did it) for an admin only" })) }) } } }, async (req) => {
    const who = requireIdentity(req);
    const events = await registry.events();
    // Who promoted or rolled back is an admin's user id: a trader reading the model history needs the what, not the who.
    return { events: who.role === "admin" ? events : events.map(({ actor: _actor, ...e }) => e) };
  });
  ctx.app.get("/models/:version", { schema: { params: Version, response: { 200: ModelOut } } }, async (req) => {
    requireIdentity(req);
    return registry.get(req.params.version).catch(registryHttpError);
  });
  ctx.app.post("/models/:version/promote", { schema: { params: Version, body: Reason, response: { 200: ModelOut } } }, async (req) => {
    const who = requireIdentity(req, "admin");
    const candidate = await registry.withArtifact(req.params.version).catch(registryHttpError);
    const mismatch = intervalMismatch(candidate, limits.interval);
    if (mismatch) throw new HttpError(409, "MODEL_INTERVAL_MISMATCH", mismatch);
    // Loaded once here: a model no replica can load, once promoted, would refuse every prediction (503).
    const loaded = await loadModel(candidate.version, candidate.artifact, candidate.features, candidate.artifactSha256).catch((e: Error) => {
      if (e instanceof ModelLoadError) throw new HttpError(409, "MODEL_UNLOADABLE", `${e.message}: not promoted`);
      throw e;
    });
    await loaded.close();
    const model = await registry.promote(req.params.version, who.userId, req.body.reason).catch(registryHttpError);
    await serving.get(true);
    return model;
  });
  ctx.app.post("/models/rollback", { schema: { body: RollbackBody, response: { 200: ModelOut } } }, async (req) => {
    const who = requireIdentity(req, "admin");
    const model = await registry.rollback(who.userId, req.body.fromVersion, req.body.reason).catch(registryHttpError);
    await serving.get(true);
    return model;
  });
}
