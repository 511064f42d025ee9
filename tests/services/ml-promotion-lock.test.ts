/**
 * Session 59: ml-predictor's train job promotes the model it registered in a transaction that takes
 * the model switch lock (ml/registry.ts MODEL_SWITCH_LOCK), and the kit waits for a lock at most
 * POSTGRES_LOCK_WAIT_MS (LockWaitError past it). The job failed its run on the first such error; now
 * it tries again while another attempt fits in ML_PROMOTE_WAIT_MS, logging each wait
 * (services/ml-predictor/promotion.ts). On real PostgreSQL, the lock held by another session: let go
 * within the budget, the promotion succeeds; held past it, the job fails with PromotionLockError and
 * nothing is half promoted (the model a candidate, the model served and the history unchanged).
 */
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { AdvisoryLockHolder } from "../helpers/advisory-lock-holder";
import { createLogger, type PostgresClient } from "../../services/src/kit";
import { createPostgres } from "../../services/src/kit/datastores/postgres";
import { LOCK_NOT_AVAILABLE } from "../../services/src/kit/datastores/postgres-contention";
import { MODEL_SWITCH_LOCK, ModelRegistry, RegistryError, type ModelRecord } from "../../services/src/ml/registry";
import type { TrainingReport } from "../../services/src/ml/training";
import { promoteWithinBudget, PromotionLockError } from "../../services/src/services/ml-predictor/promotion";
import { migratedKitPostgres } from "../helpers/schemas";

const srv = useServers("postgres");
/** The kit's bound on one lock wait here (POSTGRES_LOCK_WAIT_MS): each attempt's. */
const ATTEMPT_MS = 300;
let db: PostgresClient;
let registry: ModelRegistry;
const holder = new AdvisoryLockHolder(() => srv.postgres.url);

/** What register stores of a report: the fields it reads. */
const report = {
  features: ["ret_1"], horizon: 1, intervalMs: 60_000, symbols: ["AAAUSDT"], trainingWindow: { from: 0, to: 60_000 }, params: {},
  metrics: { outOfSample: {}, folds: [], hasEdge: true }, reference: { predictionBins: [], predictionFractions: [], features: {} },
} as unknown as TrainingReport;
let stampMs = Date.UTC(2026, 1, 1);
const registerModel = (): Promise<ModelRecord> => registry.register(randomBytes(32), report, "test", new Date((stampMs += 1000)));

/** Another session (an admin's switch, another run's) holding the model switch lock until `letGo`. */
const holdSwitchLock = () => holder.hold(MODEL_SWITCH_LOCK);

/** A logger whose lines the test reads. */
function capturedLog() {
  const lines: Array<{ level: number; msg: string; attempt?: number; lock?: string; refusal?: string; waitedMs?: number; leftMs?: number }> = [];
  const log = createLogger("ml-predictor", "info", { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}

async function stateOf(version: string) {
  const served = (await db.query<{ version: string }>(`SELECT version FROM ml_models WHERE status = 'promoted'`)).rows.map((r) => r.version);
  const status = (await db.query<{ status: string }>(`SELECT status FROM ml_models WHERE version = $1`, [version])).rows[0]?.status;
  const events = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ml_model_events WHERE version = $1 AND action = 'promoted'`, [version])).rows[0].n);
  return { served, status, events };
}

beforeAll(async () => {
  await (await migratedKitPostgres(srv.postgres.url, createLogger("ml-promotion-lock", "silent"), 1)).close();
  db = createPostgres({ POSTGRES_URL: srv.postgres.url, POSTGRES_POOL_MAX: 3, POSTGRES_CONNECT_TIMEOUT_MS: 30_000, POSTGRES_LOCK_WAIT_MS: ATTEMPT_MS }, createLogger("ml-promotion-lock", "silent"));
  registry = new ModelRegistry(db);
  const first = await registerModel();
  await registry.promote(first.version, "test");
}, 120_000);
afterEach(() => holder.releaseAll()); // a failed test's lock goes with its session
afterAll(() => db?.close());

describe("the train job's promotion while another session holds the model switch lock", () => {
  it("let go within the budget: the promotion waits, logging each wait, and succeeds", async () => {
    const [before] = (await stateOf("none")).served;
    const model = await registerModel();
    const { log, lines } = capturedLog();
    const lock = await holdSwitchLock();
    const promotion = promoteWithinBudget(registry, model.version, "test: beat the baselines", { budgetMs: 10_000, attemptMs: ATTEMPT_MS, log });
    // Two attempts' waits passed (logged), the model not promoted meanwhile; then the holder lets go.
    await expect.poll(() => lines.filter((l) => l.msg.startsWith("promotion waited")).length).toBeGreaterThanOrEqual(2);
    expect(await stateOf(model.version)).toEqual({ served: [before], status: "candidate", events: 0 });
    await lock.letGo();
    const promoted = await promotion;
    expect(promoted).toMatchObject({ version: model.version, status: "promoted" });
    expect(await stateOf(model.version)).toEqual({ served: [model.version], status: "promoted", events: 1 });
    const waits = lines.filter((l) => l.msg.startsWith("promotion waited for the model switch lock"));
    expect(waits.length).toBeGreaterThanOrEqual(2);
    expect(waits.map((l) => [l.level, l.attempt, l.lock, l.refusal])).toEqual(waits.map((_, i) => [40, i + 1, "the model switch lock", "waited"]));
    for (const w of waits) expect(w.waitedMs! + w.leftMs!).toBe(10_000);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
  }, 60_000);

  it("held past the budget: PromotionLockError naming the model and how to promote it; nothing half promoted", async () => {
    const [served] = (await stateOf("none")).served;
    const model = await registerModel();
    const { log, lines } = capturedLog();
    const lock = await holdSwitchLock();
    const budgetMs = 4 * ATTEMPT_MS;
    const started = performance.now();
    const failure = await promoteWithinBudget(registry, model.version, "test", { budgetMs, attemptMs: ATTEMPT_MS, log }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const tookMs = performance.now() - started;
    expect(failure).toBeInstanceOf(PromotionLockError);
    const e = failure as PromotionLockError;
    expect(e.message).toMatch(new RegExp(`^model ${e.version} was registered but not promoted: the model switch lock stayed held \\(another promotion or rollback, or a stalled one\\) through \\d+ attempts over \\d+ ms \\(ML_PROMOTE_WAIT_MS ${budgetMs}\\); the model served is unchanged\\. Promote it with POST /models/${e.version}/promote once the switch holding the lock has ended$`));
    expect(e.version).toBe(model.version);
    // PostgreSQL's lock_timeout on the lock (the kit's bound, what was left of it), SQLSTATE 55P03 as the kit's LockWaitError.
    expect((e.cause as { code?: string }).code).toBe(LOCK_NOT_AVAILABLE);
    // Attempts of the kit's bound each, begun only while a whole one fits: they end within the budget, give or
    // take each attempt's round trips (a generous allowance: the host may be loaded).
    expect(e.attempts).toBeGreaterThanOrEqual(2);
    expect(tookMs).toBeGreaterThanOrEqual(e.attempts * ATTEMPT_MS);
    expect(tookMs).toBeLessThan(budgetMs + e.attempts * 250);
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual(["promotion failed: the model switch lock stayed held through the promotion's budget; the model stays a candidate"]);
    expect(lines.filter((l) => l.level === 40).length).toBe(e.attempts - 1);
    // Nothing half promoted: the model a candidate, the one served and the history unchanged, even once the lock is let go.
    await lock.letGo();
    expect(await stateOf(model.version)).toEqual({ served: [served], status: "candidate", events: 0 });
    // An admin promotes it afterwards.
    await registry.promote(model.version, "admin");
    expect((await stateOf(model.version)).served).toEqual([model.version]);
  }, 60_000);

  it("a budget of 0 is one attempt; an error other than the lock's ends the promotion at once", async () => {
    const model = await registerModel();
    const { log, lines } = capturedLog();
    const lock = await holdSwitchLock();
    await expect(promoteWithinBudget(registry, model.version, "test", { budgetMs: 0, attemptMs: ATTEMPT_MS, log })).rejects.toMatchObject({ name: "PromotionLockError", attempts: 1 });
    await lock.letGo();
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
    const unknown = "20260101T000000Z-000000000000";
    await expect(promoteWithinBudget(registry, unknown, "test", { budgetMs: 10_000, attemptMs: ATTEMPT_MS, log })).rejects.toBeInstanceOf(RegistryError);
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
  }, 60_000);
});
