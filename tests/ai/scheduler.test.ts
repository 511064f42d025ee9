/**
 * ai-orchestrator's scheduler against real PostgreSQL and Redis, ml-predictor stood in for by a
 * small HTTP server of this file that holds each prediction request until the test releases it
 * (the slow answer), answers at once, or answers what the orchestrator cannot read. Each strategy
 * has a symbol of its own, so the stand-in sees which strategy asks, in which order, how many at
 * once. Strategies are made through a scheduler-less instance and enabled together in SQL; a
 * ticking instance (ORCH_TICK_MS 50) then evaluates them. Nothing is timed: the tests count
 * requests in flight at the stand-in and read the order they came in.
 *   - K due strategies are in flight together with ORCH_EVAL_CONCURRENCY >= K (it was one at a time);
 *   - never more than ORCH_EVAL_CONCURRENCY in flight, and the next starts as one finishes;
 *   - round robin by user: user B's single strategy is among the first in flight, ahead of user A's
 *     20 more overdue ones;
 *   - a strategy held by a slow answer is not started again by later ticks nor by a manual
 *     evaluation (which joins it), while ticks go on evaluating others;
 *   - close waits for the evaluation in flight and starts none of those queued;
 *   - a failing evaluation backs off: each failure in a row doubles the wait before the strategy is
 *     due again (ORCH_EVAL_RETRY_MS, then twice, ... up to its everySeconds), a success resets it
 *     (OrchestratorStore.due driven with explicit times: it started again at every tick);
 *   - a manual evaluation is not held back by the wait (it runs), counts in it, and its failure is a
 *     503 EVALUATION_FAILED with retry-after the wait (it was a 500); GET /strategies/:id and the list
 *     show the backoff (failures in a row, next attempt, last error code; no message);
 *   - the due query reads the partial index ai_strategies_schedulable (EXPLAIN), not the whole table.
 * The scheduler as a unit: tests/unit/ai-orchestrator-scheduler.test.ts.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg } from "../harness";
import { createService, type Service } from "../../services/src/kit";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";
import aiOrchestrator from "../../services/src/services/ai-orchestrator";
import { OrchestratorStore } from "../../services/src/services/ai-orchestrator/store";
import { ensureAccount } from "../helpers/accounts";
import { waitUntil } from "../trading/e2e-helpers";
import { PATIENCE_MS } from "../helpers/patience";

const srv = useServers("postgres", "redis");
/** Bound of a wait: it only guards against a hang (the old sequential scheduler never got there). */
const WAIT_MS = PATIENCE_MS;

type Answer = "hold" | "now" | "unreadable";
/** How the stand-in ml-predictor answers a strategy's symbol. */
let answerFor: (symbol: string) => Answer = () => "now";
/** Symbols asked for, in the order the requests came in. */
let requested: string[] = [];
/** Requests held until released, oldest first. */
let held: Array<{ symbol: string; release: () => void }> = [];
let inFlight = 0;
let maxInFlight = 0;

let ml: Server;
let env: Record<string, string>;
let api: Service;
let ticking: Service | undefined;
let db: InstanceType<typeof pg.Client>;

beforeAll(async () => {
  const pool = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
  await pool.end();
  db = new pg.Client({ connectionString: srv.postgres.url });
  await db.connect();
  ml = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", async () => {
      const symbol = (JSON.parse(text) as { symbols: string[] }).symbols[0];
      requested.push(symbol);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      const answer = answerFor(symbol);
      if (answer === "hold") await new Promise<void>((release) => held.push({ symbol, release }));
      inFlight--;
      const [status, body] =
        answer === "unreadable"
          ? [200, { modelVersion: "m", intervalMs: 60_000, predictions: null }]
          : [409, { error: { code: "NO_PROMOTED_MODEL", message: "no model is promoted" } }];
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => ml.listen(0, "127.0.0.1", r));
  // No strategy here has an order: order-management is never called.
  env = { ...srv.env, LOG_LEVEL: "silent", SERVICE_ML_PREDICTOR_URL: `http://127.0.0.1:${(ml.address() as AddressInfo).port}`, SERVICE_ORDER_MANAGEMENT_URL: "http://127.0.0.1:9" };
  api = await createService(aiOrchestrator, { env: { ...env, ORCH_TICK_MS: "0" }, defaultMetrics: false });
}, 120_000);

afterEach(async () => {
  for (const h of held.splice(0)) h.release();
  await ticking?.close();
  ticking = undefined;
  await db.query(`UPDATE ai_strategies SET enabled = false`);
  answerFor = () => "now";
  requested = [];
  inFlight = 0;
  maxInFlight = 0;
});

afterAll(async () => {
  await api?.close();
  await db?.end();
  ml?.close();
});

/** Strategies of one user, one symbol each (`${prefix}00`, ...), made disabled: not yet due. */
async function strategies(prefix: string, n: number, userId = randomUUID()): Promise<Array<{ id: string; symbol: string }>> {
  const out = [];
  await ensureAccount(db, userId);
  for (let i = 0; i < n; i++) {
    const symbol = `${prefix}${String(i).padStart(2, "0")}`;
    const r = await api.app.inject({
      method: "POST", url: "/strategies", headers: { "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" },
      payload: { name: symbol, symbols: [symbol], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 1e9, everySeconds: 60 },
    });
    expect(r.statusCode, r.body).toBe(201);
    out.push({ id: r.json().strategyId as string, symbol });
  }
  return out;
}

/** Makes the strategies due together, last evaluated `agoSeconds` ago (everySeconds 60). */
const makeDue = (list: Array<{ id: string }>, agoSeconds = 3600) =>
  db.query(`UPDATE ai_strategies SET enabled = true, last_evaluated_at = now() - $2 * interval '1 second' WHERE strategy_id = ANY($1)`, [list.map((s) => s.id), agoSeconds]);

const startTicking = async (concurrency: number, extra: Record<string, string> = {}) => {
  ticking = await createService(aiOrchestrator, { env: { ...env, ORCH_TICK_MS: "50", ORCH_EVAL_CONCURRENCY: String(concurrency), ...extra }, defaultMetrics: false });
  return ticking;
};

const decisionsOf = async (list: Array<{ id: string }>) =>
  (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ai_decisions WHERE strategy_id = ANY($1)`, [list.map((s) => s.id)])).rows[0].n;
const timesAsked = (symbol: string) => requested.filter((s) => s === symbol).length;

describe("ai-orchestrator scheduler", () => {
  it("evaluates K due strategies together when ORCH_EVAL_CONCURRENCY >= K (one slow answer held them all, one after another)", async () => {
    const list = await strategies("K", 5);
    answerFor = () => "hold";
    await makeDue(list);
    await startTicking(8);
    await waitUntil("5 predictions in flight at once", async () => held.length === 5, WAIT_MS);
    for (const h of held.splice(0)) h.release();
    await waitUntil("5 evaluations recorded", async () => (await decisionsOf(list)) === 5, WAIT_MS);
    expect(maxInFlight).toBe(5);
    for (const s of list) expect(timesAsked(s.symbol), s.symbol).toBe(1);
  });

  it("never has more than ORCH_EVAL_CONCURRENCY in flight, and starts the next as one finishes", async () => {
    const list = await strategies("C", 12);
    answerFor = () => "hold";
    await makeDue(list);
    await startTicking(3);
    for (let released = 0; released < list.length; released++) {
      const expected = Math.min(3, list.length - released);
      await waitUntil(`${expected} in flight after ${released} answered`, async () => held.length === expected, WAIT_MS);
      held.shift()!.release();
    }
    await waitUntil("12 evaluations recorded", async () => (await decisionsOf(list)) === 12, WAIT_MS);
    expect(maxInFlight).toBe(3);
    for (const s of list) expect(timesAsked(s.symbol), s.symbol).toBe(1);
  });

  it("takes users in turn: user B's single strategy is in the first slots, ahead of user A's 20 more overdue ones", async () => {
    const a = await strategies("A", 20);
    const [b] = await strategies("B", 1);
    // Most overdue first alone would start all of A's before B's.
    await makeDue(a, 86_400);
    await makeDue([b], 120);
    // Held, the first two started are the two in flight (an answer would free a slot for the next).
    answerFor = () => "hold";
    await startTicking(2);
    await waitUntil("2 in flight", async () => held.length === 2, WAIT_MS);
    expect(held.map((h) => h.symbol)).toContain(b.symbol);
    answerFor = () => "now";
    for (const h of held.splice(0)) h.release();
    await waitUntil("21 evaluations recorded", async () => (await decisionsOf([...a, b])) === 21, WAIT_MS);
    expect(requested).toHaveLength(21);
    expect(maxInFlight).toBe(2);
  });

  it("a strategy held by a slow answer is not started again, by later ticks nor by a manual evaluation; the others go on", async () => {
    const [slow] = await strategies("X", 1);
    const [other] = await strategies("Y", 1);
    // Y's answer cannot be read: its evaluation fails, and with a backoff of 1 ms, doubling, it is
    // due again within a few ticks each time (it counts ticks).
    answerFor = (symbol) => (symbol === slow.symbol ? "hold" : "unreadable");
    await makeDue([slow, other]);
    const orch = await startTicking(4, { ORCH_EVAL_RETRY_MS: "1" });
    await waitUntil("the slow one in flight", async () => held.length === 1, WAIT_MS);
    const manual = orch.app.inject({ method: "POST", url: `/strategies/${slow.id}/evaluate`, headers: { "x-user-id": await ownerOf(slow.id), "x-user-role": "trader", "x-auth-method": "jwt" } });
    const ticksBefore = timesAsked(other.symbol);
    await waitUntil("5 more ticks", async () => timesAsked(other.symbol) >= ticksBefore + 5, WAIT_MS);
    expect(timesAsked(slow.symbol)).toBe(1);
    held.shift()!.release();
    const r = await manual;
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().decisions).toMatchObject([{ action: "skip", reason: "no prediction: NO_PROMOTED_MODEL" }]);
    expect(timesAsked(slow.symbol)).toBe(1);
    expect(await decisionsOf([slow])).toBe(1);
  });

  it("close waits for the evaluation in flight and starts none of those queued", async () => {
    const list = await strategies("Q", 3);
    answerFor = () => "hold";
    await makeDue(list);
    const orch = await startTicking(1);
    await waitUntil("one in flight", async () => held.length === 1, WAIT_MS);
    let closed = false;
    const closing = orch.close().then(() => (closed = true));
    ticking = undefined;
    // The held evaluation is still running: close has not resolved (checked again after a round trip).
    await db.query("SELECT 1");
    expect(closed).toBe(false);
    held.shift()!.release();
    await closing;
    expect(requested).toHaveLength(1);
    // Its evaluation ended before the pool closed: recorded.
    expect(await decisionsOf(list)).toBe(1);
  });
});

describe("ai-orchestrator evaluation backoff", () => {
  it("each failure in a row doubles the wait before the strategy is due (5 s, 10 s, ... up to everySeconds); a success resets it", async () => {
    const [s] = await strategies("F", 1);
    await makeDue([s]);
    const store = new OrchestratorStore(api.app.pg);
    const headers = { "x-user-id": await ownerOf(s.id), "x-user-role": "trader", "x-auth-method": "jwt" };
    const evaluate = () => api.app.inject({ method: "POST", url: `/strategies/${s.id}/evaluate`, headers });
    const state = async () =>
      (
        await db.query<{ failures: number; wait: number | null; retryAt: Date | null; error: string | null }>(
          `SELECT eval_failures AS failures, extract(epoch FROM eval_retry_at - eval_failed_at)::float8 AS wait, eval_retry_at AS "retryAt", eval_error AS error
           FROM ai_strategies WHERE strategy_id = $1`,
          [s.id],
        )
      ).rows[0];
    const dueAt = async (at: number) => (await store.due(1000, new Date(at))).some((x) => x.strategyId === s.id);
    // Last evaluated an hour ago (everySeconds 60): due now, were it not for the failures.
    expect(await dueAt(Date.now())).toBe(true);
    answerFor = () => "unreadable";
    const waits: Array<number | null> = [];
    const shown = async () => {
      const one = await api.app.inject({ method: "GET", url: `/strategies/${s.id}`, headers });
      const list = await api.app.inject({ method: "GET", url: "/strategies", headers });
      const listed = (list.json().strategies as Array<{ strategyId: string; evaluationBackoff: unknown }>).find((x) => x.strategyId === s.id);
      expect(listed?.evaluationBackoff).toEqual(one.json().evaluationBackoff);
      return one.json().evaluationBackoff as { consecutiveFailures: number; nextAttemptAt: string | null; lastFailedAt: string | null; lastErrorCode: string | null };
    };
    expect(await shown()).toEqual({ consecutiveFailures: 0, nextAttemptAt: null, lastFailedAt: null, lastErrorCode: null });
    for (let failures = 1; failures <= 6; failures++) {
      // Asked by hand while the backoff holds the scheduler back (from the second on): it runs.
      const asked = requested.length;
      const r = await evaluate();
      expect(requested.length).toBe(asked + 1);
      // A 503 the caller can act on (it was a 500): the wait before the scheduler's next attempt.
      expect(r.statusCode, r.body).toBe(503);
      expect(r.json().error.code).toBe("EVALUATION_FAILED");
      const st = await state();
      expect(Number(r.headers["retry-after"])).toBe(st.wait);
      expect(await shown()).toEqual({
        consecutiveFailures: failures, nextAttemptAt: st.retryAt!.toISOString(), lastFailedAt: expect.any(String), lastErrorCode: "INTERNAL_ERROR",
      });
      expect(st.failures).toBe(failures);
      expect(st.error).toMatch(/predictions/);
      waits.push(st.wait);
      // Not due until eval_retry_at, due from then on (PostgreSQL keeps microseconds: 1 ms either side).
      expect(await dueAt(st.retryAt!.getTime() - 1)).toBe(false);
      expect(await dueAt(st.retryAt!.getTime() + 1)).toBe(true);
    }
    expect(waits).toEqual([5, 10, 20, 40, 60, 60]);

    // A success (a recorded evaluation: here a refusal, no model) resets it: due everySeconds later.
    answerFor = () => "now";
    expect((await evaluate()).statusCode).toBe(200);
    expect(await state()).toMatchObject({ failures: 0, retryAt: null });
    // The last failure stays readable; nothing is pending.
    expect(await shown()).toMatchObject({ consecutiveFailures: 0, nextAttemptAt: null, lastErrorCode: "INTERNAL_ERROR" });
    expect(await dueAt(Date.now())).toBe(false);
    expect(await dueAt(Date.now() + 61_000)).toBe(true);
  });
});

describe("ai-orchestrator due query", () => {
  it("reads the partial index of the enabled, live strategies (migration 0393), not every row of ai_strategies", async () => {
    // Mostly paused and deleted strategies, as a table grows: the index holds only the few enabled ones.
    await db.query(
      `INSERT INTO ai_strategies (strategy_id, user_id, name, symbols, buy_above, sell_below, order_quantity, max_position, stop_loss, min_regime_agreement, every_seconds, enabled, deleted_at)
       SELECT gen_random_uuid(), 'paused-' || (i % 50), 'paused', ARRAY['PAUSED'], 0.6, 0.4, 1, 10, 1e9, 0, 60, false, CASE WHEN i % 2 = 0 THEN now() END
       FROM generate_series(1, 3000) AS i`,
    );
    try {
      const live = await strategies("X", 3);
      await makeDue(live);
      await db.query("ANALYZE ai_strategies");
      // The store's own statement, run under EXPLAIN.
      let sql = "";
      let params: unknown[] = [];
      const recording = { query: async (text: string, values: unknown[]) => ((sql = text), (params = values), { rows: [] }) };
      await new OrchestratorStore(recording as unknown as ConstructorParameters<typeof OrchestratorStore>[0]).due(1000);
      const plan = (await db.query(`EXPLAIN (FORMAT JSON) ${sql}`, params)).rows[0];
      expect(JSON.stringify(plan)).toContain("ai_strategies_schedulable");
      // The scans of ai_strategies (the owners' accounts, a few users rows here, may be read whole).
      type PlanNode = { "Node Type": string; "Relation Name"?: string; Plans?: PlanNode[] };
      const scans = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(scans)];
      const strategyScans = scans(plan["QUERY PLAN"][0].Plan).filter((n) => n["Relation Name"] === "ai_strategies");
      expect(strategyScans.map((n) => n["Node Type"])).not.toContain("Seq Scan");
      expect((await api.app.pg.query(sql, params)).rows.map((r) => r.strategy_id).sort()).toEqual(live.map((x) => x.id).sort());
    } finally {
      await db.query(`DELETE FROM ai_strategies WHERE name = 'paused'`);
    }
  });
});

const ownerOf = async (strategyId: string) =>
  (await db.query<{ user_id: string }>(`SELECT user_id FROM ai_strategies WHERE strategy_id = $1`, [strategyId])).rows[0].user_id;
