/**
 * ai-orchestrator as a real process receiving SIGTERM while an evaluation waits for a slow
 * ml-predictor (a local HTTP server holding its answer). Before session 52 the evaluation's peer
 * call was bounded by ORCH_PREDICT_TIMEOUT_MS alone (10 s by default, up to 600 s): the close waited
 * for it, past SHUTDOWN_TIMEOUT_MS (exit 1). Its reads now take the shutdown (kit peers
 * `cutOnClose`): PEER_CLOSE_GRACE_MS into the close, the call is cut, and the evaluation ends as a
 * drain answer, 503 SHUTTING_DOWN logged at warn, with nothing of it recorded (no decision, no
 * backoff, its lease dropped without an answer, the user's evaluation token given back); the process
 * exits 0. A prediction answered within the grace is used: the evaluation decides and answers 200.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server, type ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";
import { PEER_CLOSE_GRACE_MS } from "../../services/src/kit";
import { ensureAccount } from "../helpers/accounts";
import { listen } from "../helpers/http-stand-ins";
import { startServiceProcess, type ServiceProcess } from "../helpers/service-process";
import { http, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("postgres", "redis");
const SYMBOL = "AAAUSDT";
const DRAIN_MS = 300;
/** ORCH_EVALUATIONS_PER_MINUTE: the user's budget, full again once a cut evaluation gave its token back. */
const PER_MINUTE = 12;
let db: InstanceType<typeof pg.Pool>;
let ml: Server;
let mlUrl: string;
/** The stand-in ml-predictor's requests, held: each is answered (or not) by the case. */
const held: ServerResponse[] = [];

const as = (userId: string) => ({ "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" });
/** A fresh prediction that neither buys nor sells (between sellBelow 0.4 and buyAbove 0.6): no order-management needed. */
const holdPrediction = () => ({
  modelVersion: "lgbm-test",
  intervalMs: 60_000,
  predictions: [{ symbol: SYMBOL, probabilityUp: 0.5, barTime: new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000).toISOString(), close: 100, features: {}, regimeVector: [] }],
});

beforeAll(async () => {
  db = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(db, { dir: POSTGRES_MIGRATIONS_DIR });
  ml = createServer((req, res) => {
    req.resume();
    held.push(res);
  });
  mlUrl = await listen(ml);
}, 120_000);

afterAll(async () => {
  for (const res of held) res.socket?.destroy();
  ml?.close();
  await db?.end();
});

/** The orchestrator process and an enabled strategy of a new user, its evaluation asked and waiting for ml-predictor. */
async function evaluationWaitingForPrediction(): Promise<{ orch: ServiceProcess; user: string; id: string; answer: ReturnType<typeof http> }> {
  const orch = await startServiceProcess("ai-orchestrator", {
    ...srv.env, LOG_LEVEL: "info", ORCH_TICK_MS: "0", SHUTDOWN_DRAIN_MS: String(DRAIN_MS), SERVICE_ML_PREDICTOR_URL: mlUrl,
    ORCH_PREDICT_TIMEOUT_MS: "60000", ORCH_EVALUATIONS_PER_MINUTE: String(PER_MINUTE),
  });
  const user = randomUUID();
  await ensureAccount(db, user);
  const created = await http("POST", `${orch.url}/strategies`, {
    headers: as(user),
    body: { name: "s", symbols: [SYMBOL], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 5, stopLoss: 1e9, everySeconds: 3_600, enabled: true },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const before = held.length;
  const answer = http("POST", `${orch.url}/strategies/${created.body.strategyId}/evaluate`, { headers: as(user) });
  await waitUntil("the evaluation asked ml-predictor", async () => held.length > before, 30_000, 20);
  return { orch, user, id: created.body.strategyId, answer };
}

describe("ai-orchestrator shutting down during an evaluation", { timeout: 300_000 }, () => {
  it("a prediction not answered within the grace is cut: 503 SHUTTING_DOWN at warn, nothing recorded, the token given back, exit 0", async () => {
    const { orch, user, id, answer } = await evaluationWaitingForPrediction();
    try {
      const t0 = performance.now();
      orch.child.kill("SIGTERM");
      const r = await answer;
      const tookMs = performance.now() - t0;
      expect(r.status, JSON.stringify(r.body)).toBe(503);
      expect(r.body.error).toMatchObject({ code: "SHUTTING_DOWN", message: expect.stringContaining(`the evaluation of strategy ${id} was cut before it decided anything`) });
      expect(r.headers.get("retry-after")).toBe("1");
      // The drain, then the grace: not ORCH_PREDICT_TIMEOUT_MS (60 s), nor SHUTDOWN_TIMEOUT_MS (10 s).
      expect(tookMs).toBeGreaterThanOrEqual(DRAIN_MS + PEER_CLOSE_GRACE_MS - 50);
      expect(tookMs).toBeLessThan(DRAIN_MS + PEER_CLOSE_GRACE_MS + 3_000);
      expect(await orch.exited).toBe(0);
      expect(orch.out()).toContain("shut down cleanly");

      const lines = orch.lines();
      const access = lines.find((l) => l.msg === "request completed" && l.url === `/strategies/${id}/evaluate`);
      // pino levels: 40 warn, 50 error.
      expect(access, JSON.stringify(lines.slice(-6))).toMatchObject({ level: 40, statusCode: 503, reason: expect.stringMatching(/^shutting down/) });
      expect(lines.find((l) => l.msg === "evaluation cut by the shutdown before it decided anything")).toMatchObject({ level: 40, strategyId: id, cause: expect.stringContaining("its call to the service at /api/ml/ was cut") });
      expect(lines.filter((l) => l.level >= 50), "no error line").toEqual([]);

      // Nothing half-written: no decision, no failure counted, not marked evaluated (it stays due), the lease dropped without an answer.
      expect((await db.query(`SELECT 1 FROM ai_decisions WHERE strategy_id = $1`, [id])).rows).toEqual([]);
      const { rows: [s] } = await db.query(`SELECT eval_failures, eval_retry_at, last_evaluated_at FROM ai_strategies WHERE strategy_id = $1`, [id]);
      expect(s).toEqual({ eval_failures: 0, eval_retry_at: null, last_evaluated_at: null });
      const { rows: leases } = await db.query(`SELECT answer, expires_at > clock_timestamp() AS live FROM ai_evaluation_leases WHERE strategy_id = $1`, [id]);
      expect(leases).toEqual([{ answer: null, live: false }]);
      const { rows: [budget] } = await db.query(`SELECT tokens FROM ai_evaluation_budgets WHERE user_id = $1`, [user]);
      expect(budget.tokens).toBeGreaterThan(PER_MINUTE - 0.5);
    } finally {
      orch.child.kill("SIGKILL");
    }
  });

  it("a prediction answered within the grace is used: the evaluation decides, answers 200, and the process exits 0", async () => {
    const { orch, id, answer } = await evaluationWaitingForPrediction();
    try {
      orch.child.kill("SIGTERM");
      // The close begins DRAIN_MS after SIGTERM; the prediction comes a fraction of the grace into it.
      await new Promise((r) => setTimeout(r, DRAIN_MS + PEER_CLOSE_GRACE_MS / 3));
      held.at(-1)!.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(holdPrediction()));
      const r = await answer;
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.decisions).toEqual([expect.objectContaining({ strategyId: id, symbol: SYMBOL, action: "hold", probabilityUp: 0.5 })]);
      expect(await orch.exited).toBe(0);
      expect(orch.lines().filter((l) => l.level >= 50), "no error line").toEqual([]);
    } finally {
      orch.child.kill("SIGKILL");
    }
  });
});
