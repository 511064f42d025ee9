/**
 * ml-predictor against real PostgreSQL, ClickHouse 18.16 and Weaviate: planted bars in
 * market_candles -> the `train` command (real Python training job) -> registered, regimes indexed,
 * promoted -> POST /predict; refusals (no model, missing features, stale bars, model too old) are
 * clear 4xx, a promoted model that cannot be loaded a 503; promote / rollback through the API; drift and staleness metrics on /metrics.
 */
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers, type Servers } from "../harness/shared";
import { weaviateAvailability } from "../harness/weaviate";
import { createService, runCommand, type Service } from "../../services/src/kit";
import databaseService from "../../services/src/services/database-service";
import mlPredictor from "../../services/src/services/ml-predictor";
import { createWeaviate } from "../../services/src/kit/datastores";
import { nearestRegimes } from "../../services/src/ml/regimes";
import { sha256 } from "../../services/src/ml/model";
import { DRIFT_MIN_PREDICTIONS } from "../../services/src/ml/drift";
import { plantedBars } from "../helpers/planted-bars";
import { insertPlantedBars } from "../helpers/planted-candles";
import { ML_DIR, mlPython } from "../helpers/ml-python";
import { pg } from "../harness";

const { available: withWeaviate } = weaviateAvailability();
/** `weaviate` is there only withWeaviate. */
const srv: Pick<Servers, "postgres" | "clickhouse" | "env"> & Partial<Pick<Servers, "weaviate">> = withWeaviate ? useServers("postgres", "clickhouse", "weaviate") : useServers("postgres", "clickhouse");
const SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"];
const admin = { "x-user-id": "00000000-0000-4000-8000-00000000000a", "x-user-role": "admin", "x-auth-method": "jwt" };
const trader = { "x-user-id": "00000000-0000-4000-8000-00000000000b", "x-user-role": "trader", "x-auth-method": "jwt" };

let env: Record<string, string>;
let svc: Service;

const insertBars = (symbol: string, bars: ReturnType<typeof plantedBars>) => insertPlantedBars(srv.clickhouse, symbol, bars);

beforeAll(async () => {
  env = {
    ...srv.env,
    LOG_LEVEL: "silent",
    ML_PYTHON: await mlPython(),
    ML_TRAINING_DIR: ML_DIR,
    ML_TRAIN_SYMBOLS: SYMBOLS.join(","),
    ML_TRAIN_BARS: "6000",
    ML_RELOAD_MS: "0",
  };
  expect(await runCommand(databaseService, "migrate", [], { env, defaultMetrics: false })).toBe(0);
  for (const s of SYMBOLS) await insertBars(s, plantedBars({ symbol: s, bars: 6000, seed: `svc-${s}`, plantedSignal: 0.5 }));
  await insertBars("SHORTUSDT", plantedBars({ symbol: "SHORTUSDT", bars: 30, seed: "short", plantedSignal: 0 }));
  svc = await createService(mlPredictor, { env, defaultMetrics: false });
}, 600_000);
afterAll(() => svc?.close());

describe("ml-predictor", () => {
  it("without a promoted model, /predict is a clear 409", async () => {
    const r = await svc.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["AAAUSDT"] } });
    expect(r.statusCode).toBe(409);
    expect(r.json().error).toMatchObject({ code: "NO_PROMOTED_MODEL" });
  });

  it("the train command trains on ClickHouse bars, registers, indexes regimes and promotes a model with an edge", async () => {
    expect(await runCommand(mlPredictor, "train", [], { env, defaultMetrics: false })).toBe(0);
    // The scheduled job's run recorded itself (scheduled_job_runs); the service exports it for the alerts.
    const metrics = (await svc.app.inject({ url: "/metrics" })).body;
    expect(metrics).toMatch(/^scheduled_job_last_success_timestamp_seconds\{scheduled_job="ml-predictor-retrain",service="ml-predictor"\} \d/m);
    expect(metrics).not.toMatch(/^scheduled_job_last_failure_timestamp_seconds\{/m);
    const models = (await svc.app.inject({ url: "/models", headers: trader })).json().models;
    expect(models).toHaveLength(1);
    expect(models[0]).toMatchObject({ status: "promoted", hasEdge: true, symbols: SYMBOLS, horizonBars: 1 });
    expect(models[0].artifactSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(models[0].metrics.outOfSample.model.auc).toBeGreaterThan(0.58);
    if (withWeaviate) {
      const w = createWeaviate({ WEAVIATE_URL: srv.weaviate!.url, WEAVIATE_GRPC_PORT: srv.weaviate!.grpcPort, WEAVIATE_API_KEY: srv.weaviate!.apiKey });
      try {
        const near = await nearestRegimes(await w.client(), models[0].version, new Array(11).fill(0), 5);
        expect(near).toHaveLength(5);
        expect(SYMBOLS).toContain(near[0].symbol);
      } finally {
        await w.close();
      }
    }
  }, 600_000);

  it("predicts one or many symbols from their latest bars, with the features used", async () => {
    const r = await svc.app.inject({ method: "POST", url: "/predict", headers: trader, payload: { symbols: SYMBOLS } });
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json();
    expect(body.modelVersion).toMatch(/^lgbm-/);
    expect(body.predictions.map((p: { symbol: string }) => p.symbol)).toEqual(SYMBOLS);
    for (const p of body.predictions) {
      expect(p.probabilityUp).toBeGreaterThan(0);
      expect(p.probabilityUp).toBeLessThan(1);
      expect(Object.keys(p.features)).toHaveLength(11);
      expect(p.regimeVector).toHaveLength(11);
    }
    expect((await svc.app.inject({ method: "POST", url: "/predict", payload: { symbols: SYMBOLS } })).statusCode).toBe(401);
  });

  it("bad input and missing features are 4xx naming the field", async () => {
    const bad = await svc.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["not a symbol"] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.field).toMatch(/^symbols/);
    expect((await svc.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: [] } })).statusCode).toBe(400);
    const short = await svc.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["AAAUSDT", "SHORTUSDT"] } });
    expect(short.statusCode).toBe(422);
    expect(short.json().error).toMatchObject({ code: "MISSING_FEATURES", field: "symbols.1" });
    expect(short.json().error.message).toMatch(/SHORTUSDT: cannot compute the model's features: needs 61 bars, has 30/);
    const none = await svc.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["NOBARSUSDT"] } });
    expect(none.json().error).toMatchObject({ code: "MISSING_FEATURES", field: "symbols.0" });
  });

  it("refuses stale bars and a model older than the configured age", async () => {
    const staleBars = await createService(mlPredictor, { env: { ...env, ML_MAX_BAR_AGE_SECONDS: "600" }, defaultMetrics: false });
    try {
      const r = await staleBars.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["AAAUSDT"] } });
      expect(r.statusCode).toBe(409);
      expect(r.json().error).toMatchObject({ code: "STALE_BARS", field: "symbols.0" });
    } finally {
      await staleBars.close();
    }
    const db = new pg.Client({ connectionString: srv.postgres.url });
    await db.connect();
    try {
      await db.query(`UPDATE ml_models SET trained_at = now() - interval '10 days' WHERE status = 'promoted'`);
      const old = await createService(mlPredictor, { env: { ...env, ML_MAX_MODEL_AGE_HOURS: "48" }, defaultMetrics: false });
      try {
        const r = await old.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["AAAUSDT"] } });
        expect(r.statusCode).toBe(409);
        expect(r.json().error.code).toBe("MODEL_TOO_OLD");
        expect(r.json().error.message).toMatch(/trained 240\.\d h ago, more than the allowed 48\.0 h/);
        expect((await old.app.inject({ url: "/metrics" })).body).toMatch(/ml_prediction_refusals_total\{reason="MODEL_TOO_OLD",service="ml-predictor"\} 1/);
      } finally {
        await old.close();
      }
    } finally {
      await db.query(`UPDATE ml_models SET trained_at = now() WHERE status = 'promoted'`);
      await db.end();
    }
  });

  it("promote and rollback through the API (admin only), replicas follow", async () => {
    const [first] = (await svc.app.inject({ url: "/models", headers: trader })).json().models;
    // A second model: the same job again (a retrain on the same bars is a new version).
    expect(await runCommand(mlPredictor, "train", [], { env: { ...env, ML_AUTO_PROMOTE: "false" }, defaultMetrics: false })).toBe(0);
    const models = (await svc.app.inject({ url: "/models", headers: trader })).json().models;
    const second = models.find((m: { version: string }) => m.version !== first.version);
    expect(second.status).toBe("candidate");
    expect((await svc.app.inject({ method: "POST", url: `/models/${second.version}/promote`, headers: trader, payload: {} })).statusCode).toBe(403);
    expect((await svc.app.inject({ method: "POST", url: `/models/nope/promote`, headers: admin, payload: {} })).statusCode).toBe(404);
    // The reason is shown in the model events: a C1 CSI, a line separator or a direction override is a 400 naming it (kit DisplayText).
    for (const reason of ["ok\u009b31m", "ok\u2028forged", "\u202etset", "ok\u001b[2J"]) {
      const bad = await svc.app.inject({ method: "POST", url: `/models/${second.version}/promote`, headers: admin, payload: { reason } });
      expect([bad.statusCode, bad.json().error.field], JSON.stringify(reason)).toEqual([400, "reason"]);
    }
    const p = await svc.app.inject({ method: "POST", url: `/models/${second.version}/promote`, headers: admin, payload: { reason: "test" } });
    expect(p.statusCode, p.body).toBe(200);
    const served = await svc.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["AAAUSDT"] } });
    expect(served.json().modelVersion).toBe(second.version);
    const rb = await svc.app.inject({ method: "POST", url: "/models/rollback", headers: admin, payload: { fromVersion: second.version } });
    expect(rb.json()).toMatchObject({ version: first.version, status: "promoted" });
    expect((await svc.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["AAAUSDT"] } })).json().modelVersion).toBe(first.version);
    const again = await svc.app.inject({ method: "POST", url: "/models/rollback", headers: admin, payload: { fromVersion: first.version } });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe("NO_PREVIOUS_MODEL");
    const events = (await svc.app.inject({ url: "/models/events", headers: trader })).json().events;
    expect(events.map((e: { action: string }) => e.action)).toEqual(["rolled_back", "promoted", "registered", "promoted", "registered"]);
    // The admin's user id (who promoted, who rolled back) is for admins: a trader sees what happened, not who did it.
    expect(events.filter((e: object) => "actor" in e)).toEqual([]);
    const adminEvents = (await svc.app.inject({ url: "/models/events", headers: admin })).json().events;
    expect(adminEvents[0]).toHaveProperty("actor");
  }, 600_000);

  it("never serves nor promotes a model trained on bars of another interval than ML_INTERVAL", async () => {
    const db = new pg.Client({ connectionString: srv.postgres.url });
    await db.connect();
    const [promoted] = (await db.query(`SELECT version FROM ml_models WHERE status = 'promoted'`)).rows;
    const [candidate] = (await db.query(`SELECT version FROM ml_models WHERE status <> 'promoted' ORDER BY created_at DESC LIMIT 1`)).rows;
    try {
      // The promoted model's features were computed on 5-minute bars; this replica reads 1-minute ones.
      await db.query(`UPDATE ml_models SET interval_ms = 300000 WHERE version = $1`, [promoted.version]);
      const other = await createService(mlPredictor, { env, defaultMetrics: false });
      try {
        const r = await other.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["AAAUSDT"] } });
        expect(r.statusCode, r.body).toBe(409);
        expect(r.json().error.code).toBe("MODEL_INTERVAL_MISMATCH");
        expect(r.json().error.message).toMatch(/trained on 300 s bars; this service predicts from 1m bars \(ML_INTERVAL\)/);
      } finally {
        await other.close();
      }
      await db.query(`UPDATE ml_models SET interval_ms = 300000 WHERE version = $1`, [candidate.version]);
      const p = await svc.app.inject({ method: "POST", url: `/models/${candidate.version}/promote`, headers: admin, payload: {} });
      expect(p.statusCode, p.body).toBe(409);
      expect(p.json().error.code).toBe("MODEL_INTERVAL_MISMATCH");
      expect((await db.query(`SELECT status FROM ml_models WHERE version = $1`, [candidate.version])).rows[0].status).not.toBe("promoted");
    } finally {
      await db.query(`UPDATE ml_models SET interval_ms = 60000 WHERE version = ANY($1)`, [[promoted.version, candidate.version]]);
      await db.end();
    }
    const served = await svc.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["AAAUSDT"] } });
    expect(served.statusCode, served.body).toBe(200);
    expect(served.json()).toMatchObject({ modelVersion: promoted.version, intervalMs: 60_000 });
    // A zero-length interval is a configuration error at start, naming the key.
    await expect(createService(mlPredictor, { env: { ...env, ML_INTERVAL: "0m" }, defaultMetrics: false })).rejects.toThrow(/ML_INTERVAL/);
  });

  it("a promoted model that cannot be loaded is a 503 with a JSON body and one clear log line, never a 500", async () => {
    const db = new pg.Client({ connectionString: srv.postgres.url });
    await db.connect();
    const [promoted] = (await db.query(`SELECT version, artifact, artifact_sha256 FROM ml_models WHERE status = 'promoted'`)).rows;
    const garbage = Buffer.from("not an onnx model");
    try {
      // Bytes that are not what the registry recorded (a corrupt or truncated artifact), then bytes
      // whose checksum matches but onnxruntime rejects (a bad export), then no bytes at all.
      for (const [bytes, sha, says] of [
        [garbage, promoted.artifact_sha256, /artifact checksum [0-9a-f]{64} does not match the registry's/],
        [garbage, sha256(garbage), /the model runtime rejected the artifact/],
        [Buffer.alloc(0), promoted.artifact_sha256, /artifact checksum [0-9a-f]{64} does not match the registry's/],
      ] as const) {
        await db.query(`UPDATE ml_models SET artifact = $2, artifact_sha256 = $3 WHERE version = $1`, [promoted.version, bytes, sha]);
        const logs = new PassThrough();
        const lines: string[] = [];
        logs.on("data", (d) => lines.push(...String(d).split("\n").filter(Boolean)));
        const broken = await createService(mlPredictor, { env: { ...env, LOG_LEVEL: "info", ML_RELOAD_MS: "0" }, logStream: logs, defaultMetrics: false });
        try {
          for (const [url, headers] of [["/internal/predict", {}], ["/predict", trader]] as const) {
            const r = await broken.app.inject({ method: "POST", url, headers, payload: { symbols: ["AAAUSDT"] } });
            expect(r.statusCode, r.body).toBe(503);
            expect(r.headers["content-type"]).toMatch(/^application\/json/);
            expect(r.headers["retry-after"]).toBe("1");
            expect(r.json().error.code).toBe("MODEL_UNAVAILABLE");
            expect(r.json().error.message).toMatch(new RegExp(`^the promoted model ${promoted.version} cannot be loaded \\(model ${promoted.version}: `));
            expect(r.json().error.message).toMatch(says);
          }
          expect((await broken.app.inject({ url: "/status", headers: trader })).json()).toMatchObject({ model: null, loadFailure: { version: promoted.version } });
          const logged = lines.map((l) => JSON.parse(l)).filter((l) => l.msg?.startsWith("the promoted model cannot be loaded"));
          expect(logged).toHaveLength(1); // once, not once per request
          expect(logged[0]).toMatchObject({ level: 50, modelVersion: promoted.version });
          // The kit logs every 5xx answer; these are the 503s, no 500.
          expect(lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "request failed").map((l) => l.err.statusCode)).toEqual([503, 503]);
        } finally {
          await broken.close();
        }
      }
    } finally {
      await db.query(`UPDATE ml_models SET artifact = $2, artifact_sha256 = $3 WHERE version = $1`, [promoted.version, promoted.artifact, promoted.artifact_sha256]);
      await db.end();
    }
    const fine = await createService(mlPredictor, { env, defaultMetrics: false });
    try {
      expect((await fine.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["AAAUSDT"] } })).statusCode).toBe(200);
    } finally {
      await fine.close();
    }
  });

  it("a model that cannot be loaded is not promoted (409 MODEL_UNLOADABLE); the promoted one stays served", async () => {
    const db = new pg.Client({ connectionString: srv.postgres.url });
    await db.connect();
    const [promoted] = (await db.query(`SELECT version FROM ml_models WHERE status = 'promoted'`)).rows;
    const [candidate] = (await db.query(`SELECT version, artifact, artifact_sha256 FROM ml_models WHERE status <> 'promoted' ORDER BY created_at DESC LIMIT 1`)).rows;
    const garbage = Buffer.from("not an onnx model");
    try {
      for (const [bytes, sha, says] of [
        [garbage, sha256(garbage), /the model runtime rejected the artifact/],
        [garbage, candidate.artifact_sha256, /artifact checksum [0-9a-f]{64} does not match/],
      ] as const) {
        await db.query(`UPDATE ml_models SET artifact = $2, artifact_sha256 = $3 WHERE version = $1`, [candidate.version, bytes, sha]);
        const r = await svc.app.inject({ method: "POST", url: `/models/${candidate.version}/promote`, headers: admin, payload: { reason: "bad export" } });
        expect(r.statusCode, r.body).toBe(409);
        expect(r.json().error).toMatchObject({ code: "MODEL_UNLOADABLE" });
        expect(r.json().error.message).toMatch(says);
        expect((await db.query(`SELECT version FROM ml_models WHERE status = 'promoted'`)).rows[0].version).toBe(promoted.version);
        const served = await svc.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: ["AAAUSDT"] } });
        expect(served.json().modelVersion).toBe(promoted.version);
      }
    } finally {
      await db.query(`UPDATE ml_models SET artifact = $2, artifact_sha256 = $3 WHERE version = $1`, [candidate.version, candidate.artifact, candidate.artifact_sha256]);
      await db.end();
    }
  });

  it("exposes drift, staleness and model age on /metrics", async () => {
    // The drift window holds each symbol's bar once (session 43; tests/unit/ml-drift-window.test.ts): the
    // same bars asked for DRIFT_MIN_PREDICTIONS times over add nothing, so they do not make (or set) the
    // PSI, which appears only from DRIFT_MIN_PREDICTIONS bars on. The bars here are inserted once.
    const drift = async () => (await svc.app.inject({ url: "/status", headers: trader })).json().drift as { psi: number | null; predictions: number };
    const predict = async () => {
      const r = await svc.app.inject({ method: "POST", url: "/internal/predict", payload: { symbols: SYMBOLS } });
      expect(r.statusCode, r.body).toBe(200);
    };
    await predict();
    const once = await drift();
    expect(once.predictions).toBeGreaterThanOrEqual(SYMBOLS.length);
    for (let i = 0; i < Math.ceil(DRIFT_MIN_PREDICTIONS / SYMBOLS.length); i++) await predict();
    expect(await drift()).toEqual(once);
    const m = (await svc.app.inject({ url: "/metrics" })).body;
    expect(m).toMatch(/ml_model_age_seconds\{service="ml-predictor"\} \d/);
    // prom-client writes an unlabelled gauge's 0 when nothing was set, so "no figure yet" reads as 0 (or no line).
    const psiLine = /ml_prediction_drift_psi\{service="ml-predictor"\} (\S+)/.exec(m);
    if (once.psi === null) expect(psiLine === null || Number(psiLine[1]) === 0, psiLine?.[0]).toBe(true);
    else expect(Number(psiLine?.[1])).toBeCloseTo(once.psi, 6);
    expect(m).toMatch(/ml_bar_staleness_seconds\{symbol="AAAUSDT",service="ml-predictor"\} \d/);
    expect(m).toMatch(/ml_predictions_total\{model_version="lgbm-[^"]+",service="ml-predictor"\} \d+/);
    expect(m).toMatch(/ml_model_info\{model_version="lgbm-[^"]+",has_edge="true",service="ml-predictor"\} 1/);
  });
});
