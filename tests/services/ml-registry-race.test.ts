/**
 * ml-predictor's model registry (services/src/ml/registry.ts) under concurrent promotions and
 * rollbacks on real PostgreSQL, each call in a transaction of its own connection (as replicas and
 * impatient admins send them): no call fails with anything but a RegistryError, exactly one model
 * is promoted, and the promotion history (what `rollback` walks back through) ends at the model
 * that is served, each event's `previous` being the model served before it. A rollback names the
 * model it leaves (`fromVersion`): 20 repeats of one rollback go one step back, not 20.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createLogger, createService, type PostgresClient } from "../../services/src/kit";
import mlPredictor from "../../services/src/services/ml-predictor";
import { ModelRegistry, RegistryError, type ModelRecord } from "../../services/src/ml/registry";
import type { TrainingReport } from "../../services/src/ml/training";
import { migratedKitPostgres } from "../helpers/schemas";

const srv = useServers("postgres");
let pool: PostgresClient;
let registry: ModelRegistry;

/** What register stores of a report: the fields it reads. */
const report = {
  features: ["ret_1"], horizon: 1, intervalMs: 60_000, symbols: ["AAAUSDT"], trainingWindow: { from: 0, to: 60_000 }, params: {},
  metrics: { outOfSample: {}, folds: [], hasEdge: true }, reference: { predictionBins: [], predictionFractions: [], features: {} },
} as unknown as TrainingReport;

let stampMs = Date.UTC(2026, 0, 1);
const registerModels = (n: number): Promise<ModelRecord[]> =>
  Promise.all(Array.from({ length: n }, () => registry.register(randomBytes(32), report, "test", new Date((stampMs += 1000)))));

/** Settles every call; only RegistryErrors (a client's 404/409) may be among the failures. */
async function settleAll(calls: Promise<ModelRecord>[]) {
  const settled = await Promise.allSettled(calls);
  const unexpected = settled.flatMap((s) => (s.status === "rejected" && !(s.reason instanceof RegistryError) ? [String(s.reason)] : []));
  return { settled, unexpected };
}

/** The served model and the history as rollback reads it (promote pushes, rollback pops). */
async function servedAndHistory() {
  const promoted = (await pool.query<{ version: string }>(`SELECT version FROM ml_models WHERE status = 'promoted'`)).rows.map((r) => r.version);
  const events = (await pool.query<{ version: string; action: string; previous: string | null }>(
    `SELECT version, action, previous FROM ml_model_events WHERE action IN ('promoted', 'rolled_back') ORDER BY id`,
  )).rows;
  const stack: string[] = [];
  for (const e of events) {
    if (e.action === "promoted") stack.push(e.version);
    else stack.pop();
  }
  // Each switch names the model served before it: the version of the switch recorded before it.
  const brokenChain = events.slice(1).filter((e, i) => e.previous !== events[i].version);
  return { promoted, top: stack.at(-1), brokenChain };
}

/** Exactly one model promoted, the history ending at it, each switch naming the model served before it. */
async function expectOneServedAtTheHistorysEnd(): Promise<void> {
  const { promoted, top, brokenChain } = await servedAndHistory();
  expect(promoted).toHaveLength(1);
  expect(top).toBe(promoted[0]);
  expect(brokenChain).toEqual([]);
}

beforeAll(async () => {
  // The kit's client, as ml-predictor gives the registry (app.pg): each transaction on a connection of its own.
  pool = await migratedKitPostgres(srv.postgres.url, createLogger("ml-registry-race", "silent"), 30);
  registry = new ModelRegistry(pool);
}, 120_000);
afterAll(() => pool?.close());

describe("model registry under concurrent switches", () => {
  it("20 promotions of different models at once: no failure, one promoted, the history ends at it", async () => {
    const [first] = await registerModels(1);
    await registry.promote(first.version, "test");
    for (let round = 0; round < 3; round++) {
      const models = await registerModels(20);
      const { unexpected } = await settleAll(models.map((m) => registry.promote(m.version, "admin")));
      expect(unexpected).toEqual([]);
      await expectOneServedAtTheHistorysEnd();
    }
  }, 120_000);

  it("rollbacks racing promotions: the history still ends at the served model", async () => {
    for (let round = 0; round < 5; round++) {
      const models = await registerModels(10);
      for (const m of models.slice(0, 3)) await registry.promote(m.version, "test");
      // Each rollback names the model served when it was sent: the ones overtaken by a switch are refused.
      const calls = models.slice(3).flatMap((m) => [registry.promote(m.version, "admin"), registry.rollback("admin", models[2].version)]);
      const { unexpected } = await settleAll(calls);
      expect(unexpected).toEqual([]);
      await expectOneServedAtTheHistorysEnd();
    }
  }, 120_000);

  it("20 rollbacks at once from the same model: one step back, the other 19 refused (409 naming fromVersion)", async () => {
    const models = await registerModels(22);
    for (const m of models) await registry.promote(m.version, "test");
    const from = models[21].version;
    const { settled, unexpected } = await settleAll(Array.from({ length: 20 }, () => registry.rollback("admin", from)));
    expect(unexpected).toEqual([]);
    const done = settled.filter((s) => s.status === "fulfilled");
    expect(done).toHaveLength(1);
    const refused = settled.flatMap((s) => (s.status === "rejected" ? [s.reason as RegistryError] : []));
    expect(refused.map((e) => [e.code, e.field])).toEqual(Array.from({ length: 19 }, () => ["PROMOTED_MODEL_CHANGED", "fromVersion"]));
    const { promoted, top, brokenChain } = await servedAndHistory();
    expect(promoted).toEqual([models[20].version]);
    expect(top).toBe(models[20].version);
    expect(brokenChain).toEqual([]);
  }, 120_000);

  it("through the API: fromVersion is required, and a rollback from a model no longer served is a 409 naming it", async () => {
    const models = await registerModels(3);
    for (const m of models) await registry.promote(m.version, "test");
    // ClickHouse is connected lazily and only /predict reads bars: the rollback route never reaches it.
    const env = { ...srv.env, LOG_LEVEL: "silent", ML_RELOAD_MS: "0", CLICKHOUSE_URL: "http://127.0.0.1:9", CLICKHOUSE_USER: "default", CLICKHOUSE_PASSWORD: "x", CLICKHOUSE_DATABASE: "default" };
    const svc = await createService(mlPredictor, { env, defaultMetrics: false });
    try {
      const admin = { "x-user-id": "00000000-0000-4000-8000-00000000000a", "x-user-role": "admin", "x-auth-method": "jwt" };
      const rollback = (payload: object) => svc.app.inject({ method: "POST", url: "/models/rollback", headers: admin, payload });
      const missing = await rollback({ reason: "no from" });
      expect(missing.statusCode, missing.body).toBe(400);
      expect(missing.json().error.field).toBe("fromVersion");
      const stale = await rollback({ fromVersion: models[1].version });
      expect(stale.statusCode, stale.body).toBe(409);
      expect(stale.json().error).toMatchObject({ code: "PROMOTED_MODEL_CHANGED", field: "fromVersion" });
      expect(stale.json().error.message).toContain(models[2].version);
      const ok = await rollback({ fromVersion: models[2].version, reason: "bad model" });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json()).toMatchObject({ version: models[1].version, status: "promoted" });
      const repeat = await rollback({ fromVersion: models[2].version, reason: "bad model" });
      expect(repeat.statusCode, repeat.body).toBe(409);
      expect((await servedAndHistory()).promoted).toEqual([models[1].version]);
    } finally {
      await svc.close();
    }
  }, 120_000);
});
