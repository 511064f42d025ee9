/**
 * The built-in strategy "follow the ml-predictor model" (`ml-model`).
 *  - The library: the per-bar scores are exactly the model's answer on each bar's features (NaN
 *    before the features' lookback), the strategy enters and exits on its thresholds, the
 *    event-driven and vectorized paths agree, and bad input names the field.
 *  - The service: a real model (the LightGBM training job on planted bars, served by
 *    onnxruntime-node) registered and promoted in the model registry of a fresh PostgreSQL
 *    database; a backtest through backtesting-engine's API follows it and records its version;
 *    without a promoted model the job fails naming `strategy`.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg, waitFor } from "../harness";
import { backtest, ParameterError, resolveParameters, strategies, syntheticSeries, type BarSeries } from "../../services/src/backtest";
import { featuresAt, FEATURE_NAMES, LOOKBACK, toRow, type OhlcvBar } from "../../services/src/ml/features";
import { modelScores } from "../../services/src/ml/scores";
import { ModelRegistry } from "../../services/src/ml/registry";
import { train } from "../../services/src/ml/training";
import { createService, type Service } from "../../services/src/kit";
import backtestingEngine from "../../services/src/services/backtesting-engine";
import { CLICKHOUSE_MIGRATIONS_DIR, POSTGRES_MIGRATIONS_DIR, runClickHouseMigrations, runPostgresMigrations } from "../../services/src/migrations";
import { createClickHouse } from "../../services/src/kit/datastores";
import { plantedBars } from "../helpers/planted-bars";
import { insertPlantedBars } from "../helpers/planted-candles";
import { ML_DIR, mlPython } from "../helpers/ml-python";

const srv = useServers("postgres", "clickhouse");

/** A deterministic stand-in model: P(up) rises with the last bar's return (enough to test plumbing and rules). */
const fakeModel = {
  features: [...FEATURE_NAMES] as string[],
  calls: 0,
  async predict(rows: readonly (readonly number[])[]) {
    this.calls++;
    const i = FEATURE_NAMES.indexOf("ret_1");
    return Float32Array.from(rows, (r) => 1 / (1 + Math.exp(-2000 * r[i])));
  },
};

const barsOf = (s: BarSeries): OhlcvBar[] => Array.from(s.close, (close, i) => ({ openTime: s.time[i], high: s.high[i], low: s.low[i], close, volume: s.volume[i] }));

describe("ml-model strategy (library)", () => {
  const series = syntheticSeries({ seed: 11, symbol: "BTCUSDT", bars: 20_000 });
  let scored: BarSeries;
  beforeAll(async () => {
    scored = { ...series, model: { version: "fake", score: await modelScores(series, fakeModel) } };
  });

  it("scores every bar with the model's answer on that bar's features; NaN before the lookback", async () => {
    const score = scored.model!.score;
    expect(score.length).toBe(series.close.length);
    for (let t = 0; t < LOOKBACK; t++) expect(score[t]).toBeNaN();
    const bars = barsOf(series);
    const probe = [LOOKBACK, LOOKBACK + 1, 9_999, 19_999];
    const expected = await fakeModel.predict(probe.map((t) => toRow(featuresAt(bars, t)!, fakeModel.features)));
    probe.forEach((t, k) => expect(score[t]).toBe(expected[k]));
    expect(fakeModel.calls).toBeGreaterThan(2); // batched, not one call for the whole history
  });

  it("enters above enterAbove when flat and exits below exitBelow; event-driven and vectorized agree", () => {
    const spec = { strategy: "ml-model", parameters: { enterAbove: 0.7, exitBelow: 0.3 }, initialCash: 1e9, quantity: 1, fillAt: "close" as const, execution: { makerFeeBps: "0", takerFeeBps: "0", slippageBps: "0" } };
    const event = backtest(scored, spec);
    const vectorized = backtest(scored, { ...spec, mode: "vectorized" });
    const score = scored.model!.score;
    expect(event.run.trades.length).toBeGreaterThan(50);
    for (const t of event.run.trades) {
      expect(score[t.entryBar]).toBeGreaterThan(0.7);
      if (t.exitBar < series.close.length - 1) expect(score[t.exitBar]).toBeLessThan(0.3);
      for (let i = t.entryBar + 1; i < t.exitBar; i++) expect(score[i] < 0.3).toBe(false);
    }
    expect(vectorized.run.trades.map((t) => [t.entryBar, t.exitBar])).toEqual(event.run.trades.map((t) => [t.entryBar, t.exitBar]));
    expect(vectorized.run.finalEquity).toBeCloseTo(event.run.finalEquity, 6);
  });

  it("bad input names the field: thresholds out of order or out of [0, 1], bars without scores", () => {
    const def = strategies.get("ml-model")!;
    expect(def.needs).toEqual(["model"]);
    expect(() => resolveParameters(def, { enterAbove: 0.4, exitBelow: 0.6 })).toThrow(expect.objectContaining({ field: "parameters.exitBelow" }));
    expect(() => resolveParameters(def, { enterAbove: 1.5 })).toThrow(expect.objectContaining({ field: "parameters.enterAbove" }));
    expect(() => backtest(series, { strategy: "ml-model", initialCash: 1e6 })).toThrow(ParameterError);
    expect(() => backtest(series, { strategy: "ml-model", initialCash: 1e6 })).toThrow(expect.objectContaining({ field: "strategy" }));
  });
});

describe("ml-model strategy through backtesting-engine, following a real promoted model", () => {
  let pool: import("pg").Pool;
  let svc: Service;
  let base: string;
  const user = randomUUID();
  const headers = { "x-user-id": user, "x-user-role": "trader", "x-auth-method": "jwt", "content-type": "application/json" };

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  };
  const finished = async (id: string) => {
    let last: { status: number; body: { status: string } } | undefined;
    await waitFor(`backtest ${id}`, async () => {
      last = await call("GET", `/${id}`);
      return last.body.status === "succeeded" || last.body.status === "failed";
    }, { timeoutMs: 600_000, intervalMs: 200 });
    return (await call("GET", `/${id}/results`)).body;
  };
  const submit = { strategy: "ml-model", symbols: ["AAAUSDT"], interval: "1m", period: { start: "2024-01-01T00:00:00Z", end: "2024-01-04T00:00:00Z" }, data: { source: "synthetic", seed: 5 } };

  beforeAll(async () => {
    // useServers gives this file a database of its own: a model promoted here is seen by no other test.
    pool = new pg.Pool({ connectionString: srv.postgres.url, max: 4 });
    await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
    const ch = createClickHouse({ CLICKHOUSE_URL: srv.clickhouse.url, CLICKHOUSE_USER: srv.clickhouse.user, CLICKHOUSE_PASSWORD: srv.clickhouse.password, CLICKHOUSE_DATABASE: srv.clickhouse.database });
    await runClickHouseMigrations(ch, { dir: CLICKHOUSE_MIGRATIONS_DIR });
    await ch.close();
    svc = await createService(backtestingEngine, {
      env: { LOG_LEVEL: "silent", ...srv.env, BACKTEST_POLL_MS: "50", BACKTEST_LEASE_MS: "120000" },
      defaultMetrics: false,
    });
    base = await svc.listen({ port: 0, host: "127.0.0.1" });
  }, 300_000);
  afterAll(async () => {
    await svc?.close();
    await pool?.end();
  });

  it("without a promoted model the job fails naming `strategy`", async () => {
    const r = await call("POST", "/", submit);
    expect(r.status).toBe(202);
    const done = await finished(r.body.id);
    expect(done.status).toBe("failed");
    expect(done.jobs[0].error).toMatchObject({ code: "INVALID_INPUT", field: "strategy" });
    expect(done.jobs[0].error.message).toMatch(/promoted/);
  });

  it("follows the promoted model: the job succeeds, records the model version, trades where the model says", async () => {
    const bars = ["AAAUSDT", "BBBUSDT"].flatMap((symbol) => plantedBars({ symbol, bars: 4000, seed: "ml-model", plantedSignal: 0.5 }));
    const trained = await train({ bars, python: await mlPython(), trainingDir: ML_DIR });
    // The service's own PostgreSQL client (what ml-predictor hands its registry), on this file's database.
    const registry = new ModelRegistry(svc.app.pg);
    const model = await registry.register(trained.onnx, trained.report, "test");
    await registry.promote(model.version, "test");

    const r = await call("POST", "/", { ...submit, parameters: { enterAbove: 0.52, exitBelow: 0.48 } });
    expect(r.status).toBe(202);
    const done = await finished(r.body.id);
    expect(done.status, JSON.stringify(done.jobs[0].error)).toBe("succeeded");
    expect(done.jobs[0].model).toEqual({ version: model.version });
    expect(done.jobs[0].metrics.trades).toBeGreaterThan(0);
    const trades = (await call("GET", `/${r.body.id}/jobs/0/trades?limit=5`)).body;
    expect(trades.total).toBeGreaterThan(0);
  }, 900_000);

  it("refuses to follow the model over market bars it was trained on (in-sample scores), naming `period`", async () => {
    // The bars the promoted model was fit on (the previous test), recorded in ClickHouse as data-bridge would.
    await insertPlantedBars(srv.clickhouse, "AAAUSDT", plantedBars({ symbol: "AAAUSDT", bars: 4000, seed: "ml-model", plantedSignal: 0.5 }));
    const inSample = { ...submit, period: { start: "2025-01-01T12:00:00Z", end: "2025-01-02T12:00:00Z" }, data: { source: "clickhouse" } };
    const r = await call("POST", "/", inSample);
    expect(r.status).toBe(202);
    const done = await finished(r.body.id);
    expect(done.status).toBe("failed");
    expect(done.jobs[0].error).toMatchObject({ code: "INVALID_INPUT", field: "period" });
    expect(done.jobs[0].error.message).toMatch(/^period: overlaps the bars the promoted model lgbm-\S+ was trained on \(2025-01-01T01:00:00.000Z to 2025-01-03T18:39:00.000Z, horizon included\): its scores there are in-sample/);
    // Generated bars of the same period are not what the model learned from.
    const synthetic = await call("POST", "/", { ...inSample, data: { source: "synthetic", seed: 5 } });
    expect((await finished(synthetic.body.id)).status).toBe("succeeded");
  }, 300_000);
});
