/**
 * One strategy evaluated through two ai-orchestrator replicas at once (real PostgreSQL, Redis, a
 * private Kafka; order-management in-process behind a gate that delays each order submission, so
 * an evaluation is still submitting when the next one reads the book; ml-predictor stood in for by a
 * small HTTP server answering a buy). Each replica joined only its own concurrent calls: the other
 * replica's evaluation read the same position (no working order yet) and placed an order too, past
 * the strategy's maxPosition. An evaluation now holds the strategy's lease (ai-orchestrator/lease.ts)
 * from before its book read, and a lease left by a killed replica blocks only until its expiry. A
 * call reaching the other replica meanwhile was a 409 EVALUATION_IN_PROGRESS while one joined on the
 * same replica got the decisions: it now waits (ORCH_EVALUATION_WAIT_MS) for the evaluation's answer
 * recorded on its lease (evaluation-answer.ts) and gets the same, decisions or error; the 409 naming
 * the strategy is left for a wait that ends without it.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { pg } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { startOrderPathRig, type OrderPathRig } from "../helpers/order-path-rig";
import orderManagement from "../../services/src/services/order-management";
import aiOrchestrator from "../../services/src/services/ai-orchestrator";
import { EvaluationLease } from "../../services/src/services/ai-orchestrator/lease";
import { ensureAccount } from "../helpers/accounts";
import { bodyOf, listen } from "../helpers/http-stand-ins";
import { http, sleep, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("postgres", "redis");
const SYMBOL = "AAAUSDT";
/** How long the gate holds each order submission before forwarding it. */
const SUBMIT_DELAY_MS = 300;
const PREDICT_DELAY_MS = 100;
/** How long a call on one replica waits for the other's evaluation (ORCH_EVALUATION_WAIT_MS). */
const WAIT_MS = 5_000;
/** What the stand-in ml-predictor answers: a buy, or predictions that cannot be read (a failed evaluation). */
let mlAnswer: "buy" | "unreadable" = "buy";
let rig: OrderPathRig;
let pool: InstanceType<typeof pg.Pool>;
let om: Service<any>;
let ml: Server;
let gate: Server;
/** Two ai-orchestrator instances on one database: two replicas. */
const replicas: Service<any>[] = [];
const urls: string[] = [];
let orchEnv: Record<string, string>;

const as = (userId: string) => ({ "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" });

beforeAll(async () => {
  rig = await startOrderPathRig(srv.env, { symbol: SYMBOL, lastPrice: "100", env: { LOG_LEVEL: "silent" } });
  pool = rig.pool;
  om = await createService(orderManagement, { env: rig.env, defaultMetrics: false });
  const omUrl = await om.listen({ port: 0, host: "127.0.0.1" });
  gate = createServer(async (req, res) => {
    const body = await bodyOf(req);
    if (req.method === "POST" && req.url === "/") await sleep(SUBMIT_DELAY_MS);
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith("x-") || k === "idempotency-key" || k === "content-type")) as Record<string, string>;
    const r = await fetch(`${omUrl}${req.url}`, { method: req.method, headers, body: body.length > 0 ? body : undefined });
    res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/json" }).end(Buffer.from(await r.arrayBuffer()));
  });
  const gateUrl = await listen(gate);
  // Answers after PREDICT_DELAY_MS: each evaluation reads its book, then waits for the prediction.
  ml = createServer(async (_req, res) => {
    // Slower when failing: every call of the case meets the one evaluation, which fails once the prediction comes.
    await sleep(mlAnswer === "buy" ? PREDICT_DELAY_MS : 1_000);
    const barTime = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000).toISOString();
    const predictions = mlAnswer === "buy" ? [{ symbol: SYMBOL, probabilityUp: 0.9, barTime, close: 100, features: {}, regimeVector: [] }] : null;
    const body = { modelVersion: "lgbm-test", intervalMs: 60_000, predictions };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  const mlUrl = await listen(ml);
  orchEnv = { ...rig.env, ORCH_TICK_MS: "0", ORCH_EVALUATIONS_PER_MINUTE: "600", SERVICE_ML_PREDICTOR_URL: mlUrl, SERVICE_ORDER_MANAGEMENT_URL: gateUrl, ORCH_EVALUATION_WAIT_MS: String(WAIT_MS) };
  for (let i = 0; i < 2; i++) {
    const orch = await createService(aiOrchestrator, { env: orchEnv, defaultMetrics: false });
    replicas.push(orch);
    urls.push(await orch.listen({ port: 0, host: "127.0.0.1" }));
  }
}, 300_000);

afterAll(async () => {
  for (const orch of replicas) await orch.close().catch(() => undefined);
  ml?.close();
  gate?.close();
  await om?.close().catch(() => undefined);
  await rig?.stop();
}, 60_000);

/** A new enabled strategy (buys 1 at a time up to `maxPosition`) of a new user. */
async function newStrategy(maxPosition: number, everySeconds = 3_600) {
  const user = randomUUID();
  await ensureAccount(pool, user);
  const created = await http("POST", `${urls[0]}/strategies`, {
    headers: as(user),
    body: { name: "s", symbols: [SYMBOL], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition, stopLoss: 1e9, everySeconds, enabled: true },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return { user, id: created.body.strategyId as string };
}

/** The quantity of the user's orders order-management holds (working or filled: what counts against maxPosition). */
async function orderedQuantity(user: string): Promise<number> {
  const { rows } = await pool.query<{ q: string | null }>(`SELECT sum(quantity) AS q FROM om_orders WHERE user_id = $1 AND status NOT IN ('rejected', 'cancelled')`, [user]);
  return Number(rows[0].q ?? 0);
}

const expectInProgress = (r: Awaited<ReturnType<typeof http>>, id: string) => {
  expect(r.status, JSON.stringify(r.body)).toBe(409);
  expect(r.body.error, JSON.stringify(r.body)).toMatchObject({ code: "EVALUATION_IN_PROGRESS", message: expect.stringContaining(`strategy ${id} is being evaluated by another replica of this service`) });
  expect(r.headers.get("retry-after")).toBe("1");
};
/** The strategy's leases still live (a finished evaluation's row stays a while, ended, with its answer). */
const liveLeases = async (id: string) => (await pool.query(`SELECT 1 FROM ai_evaluation_leases WHERE strategy_id = $1 AND expires_at > clock_timestamp()`, [id])).rows;

describe("one strategy's evaluations across two replicas", () => {
  it("8 rounds of 4 evaluations at once on each replica never order past maxPosition; every call gets the answer of the evaluation it met, on either replica", async () => {
    const MAX = 3;
    const { user, id } = await newStrategy(MAX);
    /** Each evaluation's answers, and the replicas that gave them. */
    const byEvaluation = new Map<string, { answers: unknown[]; replicas: Set<number> }>();
    for (let round = 0; round < 8; round++) {
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => http("POST", `${urls[i % 2]}/strategies/${id}/evaluate`, { headers: as(user) })));
      expect(await orderedQuantity(user)).toBeLessThanOrEqual(MAX);
      for (const [i, r] of answers.entries()) {
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        const evaluationId = r.body.decisions[0].evaluationId as string;
        expect(evaluationId).toEqual(expect.any(String));
        const seen = byEvaluation.get(evaluationId) ?? { answers: [], replicas: new Set<number>() };
        seen.answers.push(r.body);
        seen.replicas.add(i % 2);
        byEvaluation.set(evaluationId, seen);
      }
    }
    // Calls met running evaluations: on the same replica (joined) and on the other (waited for), the same decisions.
    for (const { answers } of byEvaluation.values()) for (const a of answers) expect(a).toEqual(answers[0]);
    expect([...byEvaluation.values()].filter((e) => e.replicas.size === 2).length).toBeGreaterThanOrEqual(1);
    expect(byEvaluation.size).toBeLessThan(64);
    expect(await orderedQuantity(user)).toBe(MAX);
    // Every buy decided saw the orders before it: none was decided on a position already at the cap.
    const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ai_decisions WHERE strategy_id = $1 AND action = 'buy'`, [id]);
    expect(Number(rows[0].n)).toBe(MAX);
    // Each evaluation's decisions name it, as its answers did.
    const named = await pool.query<{ n: string }>(`SELECT count(DISTINCT evaluation_id) AS n FROM ai_decisions WHERE strategy_id = $1`, [id]);
    expect(Number(named.rows[0].n)).toBe(byEvaluation.size);
    expect(await liveLeases(id)).toEqual([]);
  }, 180_000);

  it("a failed evaluation's answer is given on both replicas: one failure recorded, the same 503", async () => {
    const { user, id } = await newStrategy(5);
    mlAnswer = "unreadable";
    try {
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => http("POST", `${urls[i % 2]}/strategies/${id}/evaluate`, { headers: as(user) })));
      for (const r of answers) {
        expect(r.status, JSON.stringify(r.body)).toBe(503);
        expect(r.body.error.code).toBe("EVALUATION_FAILED");
        expect({ message: r.body.error.message, retryAfter: r.headers.get("retry-after") }).toEqual({ message: answers[0].body.error.message, retryAfter: answers[0].headers.get("retry-after") });
      }
      const { rows } = await pool.query<{ eval_failures: number }>(`SELECT eval_failures FROM ai_strategies WHERE strategy_id = $1`, [id]);
      expect(rows[0].eval_failures).toBe(1);
    } finally {
      mlAnswer = "buy";
    }
  }, 120_000);

  it("a lease left by a killed replica blocks the strategy until its expiry only: a call waits ORCH_EVALUATION_WAIT_MS for its answer, then 409; the failure backoff is not counted", async () => {
    const { user, id } = await newStrategy(5);
    // What a replica killed mid-evaluation leaves: its lease row, live until its expiry, never answered
    // (set long, then moved near in the database below: a short one could expire during the full waits
    // on a loaded machine, ending them early).
    const killed = randomUUID();
    await pool.query(`INSERT INTO ai_evaluation_leases (token, strategy_id, expires_at) VALUES ($1, $2, clock_timestamp() + interval '10 minutes')`, [killed, id]);
    // ORCH_EVALUATION_WAIT_MS 0: the 409 at once; out of its range, the replica does not start, naming it.
    const noWait = await createService(aiOrchestrator, { env: { ...orchEnv, ORCH_EVALUATION_WAIT_MS: "0" }, defaultMetrics: false });
    try {
      const r = await noWait.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers: as(user) });
      expect(r.statusCode, r.body).toBe(409);
      expect(r.json().error.message).not.toContain("whose answer did not come");
    } finally {
      await noWait.close();
    }
    await expect(createService(aiOrchestrator, { env: { ...orchEnv, ORCH_EVALUATION_WAIT_MS: "60001" }, defaultMetrics: false })).rejects.toThrow("ORCH_EVALUATION_WAIT_MS must be <= 60000");
    const asked = performance.now();
    const waited = await Promise.all(urls.map((url) => http("POST", `${url}/strategies/${id}/evaluate`, { headers: as(user) })));
    expect(performance.now() - asked).toBeGreaterThanOrEqual(WAIT_MS - 50);
    for (const r of waited) {
      expectInProgress(r, id);
      expect(r.body.error.message).toContain(`evaluation ${killed}`);
      expect(r.body.error.message).toMatch(/whose answer did not come \(waited \d+ ms\)/);
    }
    expect(await orderedQuantity(user)).toBe(0);
    // A lease that expires unanswered ends the wait then, not at its bound (the call, asked again, evaluates).
    await pool.query(`UPDATE ai_evaluation_leases SET expires_at = clock_timestamp() + interval '1 second' WHERE token = $1`, [killed]);
    const shortAsked = performance.now();
    expectInProgress(await http("POST", `${urls[0]}/strategies/${id}/evaluate`, { headers: as(user) }), id);
    expect(performance.now() - shortAsked).toBeLessThan(WAIT_MS - 1_000);
    // Past the lease's expiry the strategy is evaluated again.
    while ((await liveLeases(id)).length > 0) await sleep(100);
    const r = await http("POST", `${urls[1]}/strategies/${id}/evaluate`, { headers: as(user) });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.decisions[0]).toMatchObject({ action: "buy", orderId: expect.any(String) });
    expect(await orderedQuantity(user)).toBe(1);
    const { rows } = await pool.query<{ eval_failures: number }>(`SELECT eval_failures FROM ai_strategies WHERE strategy_id = $1`, [id]);
    expect(rows[0].eval_failures).toBe(0);
  }, 120_000);

  it("a replica shutting down ends its calls waiting for another replica's evaluation at once, 503 SHUTTING_DOWN: they held its close up to ORCH_EVALUATION_WAIT_MS (and a disable's up to the lease's 28 s)", async () => {
    const evaluated = await newStrategy(5);
    const disabled = await newStrategy(5);
    // Another replica's evaluations of both strategies, running (live leases, never answered within the test).
    const other = [randomUUID(), randomUUID()];
    for (const [i, s] of [evaluated, disabled].entries())
      await pool.query(`INSERT INTO ai_evaluation_leases (token, strategy_id, expires_at) VALUES ($1, $2, clock_timestamp() + interval '10 minutes')`, [other[i], s.id]);
    // Waits far longer than SHUTDOWN_TIMEOUT_MS (10 s) could take.
    const closing = await createService(aiOrchestrator, { env: { ...orchEnv, ORCH_EVALUATION_WAIT_MS: "60000" }, defaultMetrics: false });
    const url = await closing.listen({ port: 0, host: "127.0.0.1" });
    let closed = false;
    try {
      const evaluation = http("POST", `${url}/strategies/${evaluated.id}/evaluate`, { headers: as(evaluated.user) });
      const disable = http("POST", `${url}/strategies/${disabled.id}/disable`, { headers: as(disabled.user) });
      // Both are waiting: the disable is committed, the evaluation's budget token taken.
      await waitUntil("the disable committed", async () => (await pool.query(`SELECT 1 FROM ai_strategies WHERE strategy_id = $1 AND NOT enabled`, [disabled.id])).rows.length > 0, 10_000, 20);
      await waitUntil("the evaluation's budget taken", async () => (await pool.query(`SELECT 1 FROM ai_evaluation_budgets WHERE user_id = $1`, [evaluated.user])).rows.length > 0, 10_000, 20);
      await sleep(300);
      const started = performance.now();
      const close = closing.close().then(() => (closed = true));
      const [e, d] = await Promise.all([evaluation, disable]);
      await close;
      // Promptly: the close waited for the two requests only as long as their answers took (a poll, a query).
      expect(performance.now() - started).toBeLessThan(3_000);
      for (const r of [e, d]) {
        expect(r.status, JSON.stringify(r.body)).toBe(503);
        expect(r.body.error.code).toBe("SHUTTING_DOWN");
        expect(r.headers.get("retry-after")).toBe("1");
      }
      expect(e.body.error.message).toContain(`evaluation ${other[0]}), whose answer was not waited for; nothing was evaluated for this request`);
      expect(d.body.error.message).toContain(`strategy ${disabled.id}'s change is made, but its evaluation running in another replica of this service, which may still place an order, was not waited for`);
      expect(await orderedQuantity(evaluated.user)).toBe(0);
    } finally {
      if (!closed) await closing.close().catch(() => undefined);
      await pool.query(`DELETE FROM ai_evaluation_leases WHERE token = ANY($1)`, [other]);
    }
  }, 60_000);

  it("a lease that expired before its renewal is lapsed (no submit), and the strategy's next evaluation, in either replica, is not held back by it", async () => {
    const { id } = await newStrategy(5);
    const a = new EvaluationLease(replicas[0].app.pg, id);
    const b = new EvaluationLease(replicas[1].app.pg, id);
    expect(await a.renew()).toEqual({ kind: "held" });
    expect(a.coversSubmit()).toBe(true);
    const busy = await b.renew();
    expect(busy).toMatchObject({ kind: "busy", until: expect.any(Date) });
    expect(b.coversSubmit()).toBe(false);
    // A's evaluation outlives its lease (a pool wait, a long stall): B's next evaluation takes the strategy, then ends.
    await pool.query(`UPDATE ai_evaluation_leases SET expires_at = clock_timestamp() - interval '1 millisecond' WHERE token = $1`, [a.token]);
    const b2 = new EvaluationLease(replicas[1].app.pg, id);
    expect(await b2.renew()).toEqual({ kind: "held" });
    await b2.release();
    // A's book may be older than B's order: A's renewal is refused and it may not submit.
    expect(await a.renew()).toEqual({ kind: "lapsed" });
    expect(a.coversSubmit()).toBe(false);
    await a.release();
    expect(await liveLeases(id)).toEqual([]);

    // A lease not taken at the evaluation's start (the strategy was disabled then) is not taken later, once it is enabled again.
    await pool.query(`UPDATE ai_strategies SET enabled = false WHERE strategy_id = $1`, [id]);
    const late = new EvaluationLease(replicas[0].app.pg, id);
    expect(await late.renew()).toEqual({ kind: "closed" });
    await pool.query(`UPDATE ai_strategies SET enabled = true WHERE strategy_id = $1`, [id]);
    expect(await late.renew()).toEqual({ kind: "lapsed" });
    expect(late.coversSubmit()).toBe(false);

    // A lease kept after a submit without an answer makes a disable wait (it stays, live), not an evaluation.
    const kept = new EvaluationLease(replicas[0].app.pg, id);
    expect(await kept.renew()).toEqual({ kind: "held" });
    await kept.keep();
    const c = new EvaluationLease(replicas[1].app.pg, id);
    expect(await c.renew()).toEqual({ kind: "held" });
    await c.release();
    const left = await pool.query<{ token: string }>(`SELECT token FROM ai_evaluation_leases WHERE strategy_id = $1 AND expires_at > clock_timestamp()`, [id]);
    expect(left.rows).toEqual([{ token: kept.token }]);
  }, 60_000);

  it("both replicas' schedulers (ticking every 50 ms) and API calls on both, at once, order up to maxPosition and no further", async () => {
    const MAX = 2;
    // Two more replicas whose schedulers run: the strategy is due in both at the same ticks.
    const ticking: Service<any>[] = [];
    try {
      for (let i = 0; i < 2; i++) ticking.push(await createService(aiOrchestrator, { env: { ...orchEnv, ORCH_TICK_MS: "50" }, defaultMetrics: false }));
      const { user, id } = await newStrategy(MAX, 5);
      const until = Date.now() + 12_000;
      while (Date.now() < until && (await orderedQuantity(user)) < MAX) {
        const answers = await Promise.all(urls.map((url) => http("POST", `${url}/strategies/${id}/evaluate`, { headers: as(user) })));
        for (const r of answers) expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(await orderedQuantity(user)).toBeLessThanOrEqual(MAX);
      }
      expect(await orderedQuantity(user)).toBe(MAX);
      // The schedulers' next round (everySeconds 5) finds the strategy full: a decision to hold at the
      // limit recorded after the cap was reached, and still no order more.
      const atLimit = async () =>
        Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ai_decisions WHERE strategy_id = $1 AND action = 'hold' AND reason LIKE 'position % at its limit %'`, [id])).rows[0].n);
      const holdsBefore = await atLimit();
      await waitUntil("a scheduled evaluation of the full strategy", async () => (await atLimit()) > holdsBefore, 60_000, 100);
      expect(await orderedQuantity(user)).toBe(MAX);
      const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ai_decisions WHERE strategy_id = $1 AND action = 'buy'`, [id]);
      expect(Number(rows[0].n)).toBe(MAX);
    } finally {
      for (const orch of ticking) await orch.close().catch(() => undefined);
    }
  }, 120_000);
});
