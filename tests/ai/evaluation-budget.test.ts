/**
 * ai-orchestrator's per-user evaluation budget (evaluation-budget.ts) on a real PostgreSQL: a request
 * answered with nothing evaluated for it (503 SHUTTING_DOWN: this replica's shutdown cut its wait for
 * another replica's evaluation; 409 EVALUATION_IN_PROGRESS) gets its token back; any other answer,
 * an evaluation's decisions or its failure, keeps it spent. One token a minute: the refill adds a
 * 60th a second, so a token back reads as ~1, one kept as ~0. (tests/ai/strategy-replicas.test.ts
 * drives the shutdown itself.)
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg } from "../harness";
import { HttpError, shuttingDown, type PostgresClient } from "../../services/src/kit";
import { EvaluationBudget } from "../../services/src/services/ai-orchestrator/evaluation-budget";
import { EvaluationInProgress } from "../../services/src/services/ai-orchestrator/lease";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";

const srv = useServers("postgres");
let db: InstanceType<typeof pg.Pool>;
let budget: EvaluationBudget;

beforeAll(async () => {
  db = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(db, { dir: POSTGRES_MIGRATIONS_DIR });
  budget = new EvaluationBudget(db as unknown as PostgresClient, 1);
}, 300_000);
afterAll(async () => {
  await db?.end();
});

const tokens = async (user: string) => (await db.query<{ tokens: number }>("SELECT tokens FROM ai_evaluation_budgets WHERE user_id = $1", [user])).rows[0].tokens;

describe("ai-orchestrator: the evaluation budget's token of a request nothing was evaluated for", () => {
  it("is given back after a 503 SHUTTING_DOWN and a 409 EVALUATION_IN_PROGRESS (the same error answered), so the next request is not refused 429", async () => {
    const user = randomUUID();
    const cut = shuttingDown("the wait was not finished; nothing was evaluated for this request");
    await expect(budget.spend(user, () => Promise.reject(cut))).rejects.toBe(cut);
    expect(await tokens(user)).toBeGreaterThan(0.99);
    const busy = new EvaluationInProgress(randomUUID(), new Date(), randomUUID(), 5);
    await expect(budget.spend(user, () => Promise.reject(busy))).rejects.toBe(busy);
    expect(await tokens(user)).toBeGreaterThan(0.99);
    expect(await budget.spend(user, async () => "decided")).toBe("decided");
    expect(await tokens(user)).toBeLessThan(0.5);
    await expect(budget.spend(user, async () => "again")).rejects.toMatchObject({ statusCode: 429, code: "EVALUATION_LIMIT" });
  });

  it("stays spent after an evaluation that ran and failed (its failure is recorded, as its decisions would be)", async () => {
    const user = randomUUID();
    const failed = new HttpError(503, "PREDICTOR_UNAVAILABLE", "ml-predictor did not answer");
    await expect(budget.spend(user, () => Promise.reject(failed))).rejects.toBe(failed);
    expect(await tokens(user)).toBeLessThan(0.5);
  });
});
