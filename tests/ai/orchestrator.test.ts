/**
 * ai-orchestrator against real PostgreSQL and Redis, its two peers stood in for by small HTTP
 * servers of this file (ml-predictor answers what a test sets, order-management records the
 * orders it is sent, working until a test fills them): a prediction from bars the market has left
 * behind places no order nor trips the loss stop, a buy still working counts against maxPosition,
 * only open orders are looked up, one user cannot keep more strategies than
 * ORCH_MAX_STRATEGIES_PER_USER (even with concurrent requests) and frees a place by deleting one, nor ask
 * more than ORCH_EVALUATIONS_PER_MINUTE evaluations through the API, whatever the strategy,
 * a disabled or deleted strategy is never evaluated, nor one whose owner's account an admin disabled
 * or deleted, a DELETE while an evaluation submits an order
 * cancels that order too, creations honour an Idempotency-Key, and a submit answered a 5xx that
 * may follow its COMMIT is left for the recovery (which finds its order), not recorded as no order.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg, Redis, waitFor } from "../harness";
import { TRADING_STATE_KEYS } from "../../services/src/trading/tradingState";
import { createService, type Service } from "../../services/src/kit";
import aiOrchestrator from "../../services/src/services/ai-orchestrator";
import { OrchestratorStore } from "../../services/src/services/ai-orchestrator/store";
import { purgeDeletedStrategies, purgeOldDecisions } from "../../services/src/services/ai-orchestrator/retire";
import { deleteUser } from "../../services/src/services/user-management/data";
import aiChainAnalytics from "../../services/src/services/ai-chain-analytics";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";
import { ensureAccount } from "../helpers/accounts";
import { PATIENCE_MS } from "../helpers/patience";

const srv = useServers("postgres", "redis");
const MAX_STRATEGIES = 3;
/** Evaluations a user may ask through the API a minute (a case here asks at most 8 of one user). */
const EVALUATIONS_PER_MINUTE = 10;

/** What the stand-in ml-predictor answers next (a function of the symbols asked for). */
let predictions: (symbols: string[]) => unknown = () => ({});
/** The stand-in ml-predictor's status (409: e.g. no promoted model). */
let predictStatus = 200;
/** Done while the stand-in ml-predictor works on a request, before it answers. */
let duringPredict: () => Promise<unknown> = async () => undefined;
const orders: Array<Record<string, unknown>> = [];
/** Order lookups (GET /:id) the stand-in order-management answered. */
let lookups = 0;
/** Orders whose cancel (POST /:id/cancel) the stand-in order-management was asked. */
const cancels: string[] = [];
/** Done while the stand-in order-management works on a submission, before it answers. */
let duringSubmit: () => Promise<unknown> = async () => undefined;
/** When set, what the stand-in order-management answers a submission it has stored (an answer lost after its COMMIT). */
let submitAnswer: { status: number; body: unknown } | undefined;
const peers: Server[] = [];
let orch: Service;
let mlUrl: string;
let omUrl: string;
let db: InstanceType<typeof pg.Pool>;

async function peer(handle: (path: string, body: any) => { status: number; body: unknown } | Promise<{ status: number; body: unknown }>): Promise<string> {
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", async () => {
      const out = await handle(req.url ?? "/", text ? JSON.parse(text) : undefined);
      // Status 0: the connection is lost before any answer.
      if (out.status === 0) return void res.socket?.destroy();
      res.writeHead(out.status, { "content-type": "application/json" }).end(JSON.stringify(out.body));
    });
  });
  peers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  db = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(db, { dir: POSTGRES_MIGRATIONS_DIR });
  mlUrl = await peer(async (_path, body) => {
    await duringPredict();
    return predictStatus === 200 ? { status: 200, body: predictions(body.symbols) } : { status: predictStatus, body: { error: { code: "NO_PROMOTED_MODEL", message: "no model is promoted" } } };
  });
  omUrl = await peer(async (path, body) => {
    const cancel = /^\/([^/]+)\/cancel$/.exec(path);
    if (cancel) {
      cancels.push(cancel[1]);
      const known = orders.find((o) => o.orderId === cancel[1]);
      if (!known) return { status: 404, body: { error: { code: "NOT_FOUND", message: "order not found" } } };
      if (!["accepted", "partially_filled", "pending_cancel"].includes(known.status as string)) return { status: 409, body: { error: { code: "ORDER_NOT_CANCELLABLE", message: `order is ${known.status}` } } };
      known.status = "pending_cancel";
      return { status: 202, body: known };
    }
    const byKey = /^\/\?idempotencyKey=(.+)$/.exec(path);
    if (byKey) return { status: 200, body: { orders: orders.filter((o) => o.clientOrderId === decodeURIComponent(byKey[1])) } };
    if (path !== "/") {
      lookups++;
      const known = orders.find((o) => `/${o.orderId}` === path);
      return known ? { status: 200, body: known } : { status: 404, body: { error: { code: "NOT_FOUND", message: "no such order" } } };
    }
    await duringSubmit();
    const order = { orderId: randomUUID(), clientOrderId: body.clientOrderId, symbol: body.symbol, side: body.side, quantity: body.quantity, status: "accepted", filledQuantity: "0", avgFillPrice: null as string | null, fees: "0", rejectReason: null, rejectMessage: null };
    orders.push(order);
    return submitAnswer ?? { status: 201, body: order };
  });
  orch = await createService(aiOrchestrator, {
    env: {
      ...srv.env, LOG_LEVEL: "silent", ORCH_TICK_MS: "0", SERVICE_ML_PREDICTOR_URL: mlUrl, SERVICE_ORDER_MANAGEMENT_URL: omUrl,
      ORCH_MAX_STRATEGIES_PER_USER: String(MAX_STRATEGIES), ORCH_EVALUATIONS_PER_MINUTE: String(EVALUATIONS_PER_MINUTE),
    },
    defaultMetrics: false,
  });
}, 120_000);
afterAll(async () => {
  await orch?.close();
  for (const s of peers) s.close();
  await db?.end();
});

/** A trader with an active account. */
const who = async () => {
  const id = randomUUID();
  await ensureAccount(db, id);
  return { "x-user-id": id, "x-user-role": "trader", "x-auth-method": "jwt" };
};
// Enabled (the scheduler is off: ORCH_TICK_MS 0): an evaluation is asked of an enabled strategy only.
const body = { name: "s", symbols: ["AAAUSDT"], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 1e9, enabled: true };
const create = (headers: Record<string, string>) => orch.app.inject({ method: "POST", url: "/strategies", headers, payload: body });
const prediction = (barTime: number, intervalMs: number | undefined) => (symbols: string[]) => ({
  modelVersion: "lgbm-test", ...(intervalMs === undefined ? {} : { intervalMs }), hasEdge: true,
  predictions: symbols.map((symbol) => ({ symbol, probabilityUp: 0.9, barTime: new Date(barTime).toISOString(), close: 100, features: {}, regimeVector: [] })),
});

describe("ai-orchestrator", () => {
  it("acts on a fresh prediction, and records a stale one as a skip without an order", async () => {
    const headers = await who();
    const id = (await create(headers)).json().strategyId;
    const evaluate = async () => {
      const r = await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers });
      expect(r.statusCode, r.body).toBe(200);
      return r.json().decisions[0];
    };
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    predictions = prediction(minute - 60_000, 60_000);
    const fresh = await evaluate();
    expect(fresh).toMatchObject({ action: "buy", quantity: 1 });
    expect(fresh.orderId).toBe(orders.at(-1)!.orderId);

    const before = orders.length;
    // Market data stopped two hours ago: ml-predictor still answers from its last bars.
    predictions = prediction(minute - 2 * 3_600_000, 60_000);
    const stale = await evaluate();
    expect(stale).toMatchObject({ action: "skip", quantity: 0, orderId: null, probabilityUp: 0.9 });
    expect(stale.reason).toMatch(/^stale prediction: its latest bar opened at .*, 7\d{3} s ago, more than 3 bars of 60 s$/);
    predictions = prediction(minute - 60_000, undefined);
    expect((await evaluate()).reason).toBe("prediction without its bar interval: its age cannot be judged");
    expect(orders.length).toBe(before);
  });

  it("a submit answered 5xx after order-management may have committed it is left for recovery, which finds the order; a deadline 503 is recorded as no order", async () => {
    const headers = await who();
    const id = (await create(headers)).json().strategyId;
    const evaluate = () => orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers });
    const decisions = async () => (await orch.app.inject({ method: "GET", url: `/strategies/${id}/decisions`, headers })).json().decisions as Array<Record<string, any>>;
    predictions = prediction(Math.floor(Date.now() / 60_000) * 60_000 - 60_000, 60_000);
    // Stored, then answered as a COMMIT whose answer PostgreSQL never gave (the kit's 503 for a lost connection).
    submitAnswer = { status: 503, body: { error: { code: "DATASTORE_UNAVAILABLE", message: "A datastore is unavailable; retry shortly" } } };
    let r: Awaited<ReturnType<typeof evaluate>>;
    try {
      r = await evaluate();
    } finally {
      submitAnswer = undefined;
    }
    const placed = orders.at(-1)!;
    expect(r.statusCode, r.body).toBe(503);
    expect(r.json().error.code).toBe("ORDER_OUTCOME_PENDING");
    expect(Number(r.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    const [pending] = await decisions();
    expect(pending).toMatchObject({ decisionId: placed.clientOrderId, action: "buy", orderId: null, risk: null });
    // Once it can no longer commit, the recovery looks it up and finds the order.
    const db = new pg.Client({ connectionString: srv.postgres.url });
    await db.connect();
    try {
      await db.query("UPDATE ai_decisions SET decided_at = now() - interval '1 minute' WHERE decision_id = $1", [pending.decisionId]);
    } finally {
      await db.end();
    }
    expect((await evaluate()).statusCode).toBe(200);
    expect((await decisions()).find((d) => d.decisionId === pending.decisionId)).toMatchObject({ orderId: placed.orderId, risk: { status: "accepted", recovered: true } });

    // The connection lost after the order was stored (kit peers: 502 UPSTREAM_UNAVAILABLE): left for the recovery too.
    submitAnswer = { status: 0, body: undefined };
    try {
      r = await evaluate();
    } finally {
      submitAnswer = undefined;
    }
    expect(r.statusCode, r.body).toBe(503);
    expect(r.json().error.code).toBe("ORDER_OUTCOME_PENDING");
    expect(Number(r.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect((await decisions())[0]).toMatchObject({ decisionId: orders.at(-1)!.clientOrderId, orderId: null, risk: null });
    const db2 = new pg.Client({ connectionString: srv.postgres.url });
    await db2.connect();
    try {
      await db2.query("UPDATE ai_decisions SET decided_at = now() - interval '1 minute' WHERE strategy_id = $1 AND risk IS NULL", [id]);
    } finally {
      await db2.end();
    }

    // A submit order-management rolled back at its deadline placed nothing: recorded so at once.
    submitAnswer = { status: 503, body: { error: { code: "SUBMIT_DEADLINE_PASSED", message: "the order was not placed" } } };
    try {
      r = await evaluate();
    } finally {
      submitAnswer = undefined;
    }
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().decisions[0]).toMatchObject({ action: "buy", orderId: null, risk: { status: "error", code: "SUBMIT_DEADLINE_PASSED" } });
  });

  it("a buy still working counts against maxPosition: an evaluation before its fill orders nothing more", async () => {
    const headers = await who();
    const r = await orch.app.inject({ method: "POST", url: "/strategies", headers, payload: { ...body, orderQuantity: 1, maxPosition: 1 } });
    const id = r.json().strategyId;
    const evaluate = async () => (await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers })).json().decisions[0];
    predictions = prediction(Math.floor(Date.now() / 60_000) * 60_000 - 60_000, 60_000);
    const first = await evaluate();
    expect(first).toMatchObject({ action: "buy", quantity: 1 });
    const before = orders.length;
    // The paper exchange fills a market order on a later bar: until then it is working, unfilled.
    expect(await evaluate()).toMatchObject({ action: "hold", reason: "position 0 (+1 in working buys) at its limit 1" });
    expect(orders.length).toBe(before);
    Object.assign(orders.find((o) => o.orderId === first.orderId)!, { status: "filled", filledQuantity: "1", avgFillPrice: "100" });
    expect(await evaluate()).toMatchObject({ action: "hold", reason: "position 1 at its limit 1" });
    expect(orders.length).toBe(before);
  });

  it("a kill switch set while the prediction was computed applies to this evaluation's decisions", async () => {
    const headers = await who();
    const id = (await create(headers)).json().strategyId;
    const redis = new Redis(srv.env.DRAGONFLY_URL);
    predictions = prediction(Math.floor(Date.now() / 60_000) * 60_000 - 60_000, 60_000);
    duringPredict = () => redis.set(TRADING_STATE_KEYS.user(headers["x-user-id"]), "halted").then(() => undefined);
    const before = orders.length;
    try {
      const r = await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers });
      expect(r.json().decisions[0]).toMatchObject({ action: "skip", reason: "trading is halted", tradingState: "halted", orderId: null });
      expect(orders.length).toBe(before);
    } finally {
      duringPredict = async () => undefined;
      await redis.del(TRADING_STATE_KEYS.user(headers["x-user-id"]));
      await redis.quit();
    }
  });

  it("an evaluation without predictions is recorded and waits everySeconds like any other", async () => {
    const headers = await who();
    const id = (await orch.app.inject({ method: "POST", url: "/strategies", headers, payload: { ...body, everySeconds: 3600 } })).json().strategyId;
    predictStatus = 409;
    try {
      const r = await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers });
      expect(r.json().decisions[0]).toMatchObject({ action: "skip", reason: "no prediction: NO_PROMOTED_MODEL" });
    } finally {
      predictStatus = 200;
    }
    // Left unset, the scheduler found it due again at its next tick (ORCH_TICK_MS, 5 s) instead of in an hour.
    const s = (await orch.app.inject({ url: `/strategies/${id}`, headers })).json();
    expect(s.lastEvaluatedAt).not.toBeNull();
  });

  it("caps the strategies one user keeps, concurrent requests included; other users are unaffected", async () => {
    const headers = await who();
    const codes = (await Promise.all(Array.from({ length: MAX_STRATEGIES + 3 }, () => create(headers)))).map((r) => r.statusCode);
    expect(codes.filter((c) => c === 201)).toHaveLength(MAX_STRATEGIES);
    expect(codes.filter((c) => c === 409)).toHaveLength(3);
    const over = await create(headers);
    expect(over.statusCode).toBe(409);
    expect(over.json().error).toMatchObject({ code: "CONFLICT", message: `at most ${MAX_STRATEGIES} strategies per user (delete one: DELETE /strategies/:id)` });
    expect((await orch.app.inject({ url: "/strategies", headers })).json().strategies).toHaveLength(MAX_STRATEGIES);
    expect((await create(await who())).statusCode).toBe(201);
  });

  it("bounds the evaluations one user asks through the API a minute, whatever the strategy: 429 naming the limit (session 45)", async () => {
    const headers = await who();
    const ids: string[] = [];
    for (let i = 0; i < MAX_STRATEGIES; i++) ids.push((await create(headers)).json().strategyId);
    predictions = prediction(Math.floor(Date.now() / 60_000) * 60_000 - 60_000, 60_000);
    const evaluate = (id: string, h = headers) => orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers: h });
    // The budget refills a token every 60 / EVALUATIONS_PER_MINUTE s: on a loaded machine the calls below
    // took longer than that, and a token came back (a 200 where the test wanted the 429). Time is held
    // still between the calls instead: what refilled since the last spend is taken away before the next.
    const holdTime = () => db.query("UPDATE ai_evaluation_budgets SET refilled_at = now() WHERE user_id = $1", [headers["x-user-id"]]);
    // Round robin over the user's strategies: more strategies give no more evaluations.
    for (let i = 0; i < EVALUATIONS_PER_MINUTE; i++) {
      await holdTime();
      const r = await evaluate(ids[i % ids.length]);
      expect(r.statusCode, r.body).toBe(200);
    }
    await holdTime();
    const over = await evaluate(ids[EVALUATIONS_PER_MINUTE % ids.length]);
    // Before: 200, and a decision per call without end.
    expect(over.statusCode, over.body).toBe(429);
    expect(over.json().error).toMatchObject({ code: "EVALUATION_LIMIT", message: expect.stringContaining(`at most ${EVALUATIONS_PER_MINUTE} evaluations a minute per user`) });
    // The limit, not the operator's setting behind it (session 52: no error text names a configuration key).
    expect(over.json().error.message).not.toContain("ORCH_EVALUATIONS_PER_MINUTE");
    expect(Number(over.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(Number(over.headers["retry-after"])).toBeLessThanOrEqual(Math.ceil(60 / EVALUATIONS_PER_MINUTE));
    const recorded = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM ai_decisions WHERE user_id = $1", [headers["x-user-id"]]);
    expect(recorded.rows[0].n).toBe(EVALUATIONS_PER_MINUTE);
    // Asked all at once by another user: the bound holds (the upsert takes turns on the user's row).
    const other = await who();
    const theirs: string[] = [];
    for (let i = 0; i < MAX_STRATEGIES; i++) theirs.push((await create(other)).json().strategyId);
    const codes = (await Promise.all(Array.from({ length: EVALUATIONS_PER_MINUTE + 3 }, (_, i) => evaluate(theirs[i % theirs.length], other)))).map((r) => r.statusCode);
    expect(codes.filter((c) => c === 200)).toHaveLength(EVALUATIONS_PER_MINUTE);
    expect(codes.filter((c) => c === 429)).toHaveLength(3);
    // A token is back after 60 / EVALUATIONS_PER_MINUTE seconds (moved back here rather than waited for).
    await db.query("UPDATE ai_evaluation_budgets SET refilled_at = refilled_at - make_interval(secs => $2) WHERE user_id = $1", [headers["x-user-id"], 60 / EVALUATIONS_PER_MINUTE]);
    expect((await evaluate(ids[0])).statusCode).toBe(200);
    expect((await evaluate(ids[0])).statusCode).toBe(429);
  });

  it("a user at the limit deletes a strategy to create another; a deleted one keeps its decisions and is never evaluated", async () => {
    const headers = await who();
    const ids: string[] = [];
    for (let i = 0; i < MAX_STRATEGIES; i++) ids.push((await create(headers)).json().strategyId);
    expect((await create(headers)).statusCode).toBe(409);
    predictions = prediction(Math.floor(Date.now() / 60_000) * 60_000 - 60_000, 60_000);
    const [decision] = (await orch.app.inject({ method: "POST", url: `/strategies/${ids[0]}/evaluate`, headers })).json().decisions;
    // Owner-only, admins included (the service has no admin view): another user's id is unknown.
    for (const stranger of [await who(), { ...(await who()), "x-user-role": "admin", "x-auth-method": "jwt" }]) {
      expect((await orch.app.inject({ method: "DELETE", url: `/strategies/${ids[0]}`, headers: stranger })).statusCode).toBe(404);
      expect((await orch.app.inject({ method: "PATCH", url: `/strategies/${ids[0]}`, headers: stranger, payload: { enabled: false } })).statusCode).toBe(404);
    }
    const del = await orch.app.inject({ method: "DELETE", url: `/strategies/${ids[0]}`, headers });
    expect(del.statusCode, del.body).toBe(204);
    expect((await orch.app.inject({ method: "DELETE", url: `/strategies/${ids[0]}`, headers })).statusCode).toBe(204);
    expect((await orch.app.inject({ method: "DELETE", url: `/strategies/${randomUUID()}`, headers })).statusCode).toBe(404);
    const listed = (await orch.app.inject({ url: "/strategies", headers })).json().strategies.map((x: { strategyId: string }) => x.strategyId);
    expect(listed.sort()).toEqual(ids.slice(1).sort());
    expect((await create(headers)).statusCode).toBe(201);
    expect((await create(headers)).statusCode).toBe(409);

    const gone = (await orch.app.inject({ url: `/strategies/${ids[0]}`, headers })).json();
    expect(gone).toMatchObject({ enabled: false });
    expect(gone.deletedAt).not.toBeNull();
    const decisions = (await orch.app.inject({ url: `/strategies/${ids[0]}/decisions`, headers })).json().decisions;
    expect(decisions.map((d: { decisionId: string }) => d.decisionId)).toEqual([decision.decisionId]);
    const since = new Date(Date.parse(decision.decidedAt) - 1).toISOString();
    expect((await orch.app.inject({ url: `/internal/decisions?since=${since}` })).json().decisions.map((d: { decisionId: string }) => d.decisionId)).toContain(decision.decisionId);
    for (const [method, url, payload] of [["POST", "evaluate", undefined], ["POST", "enable", undefined], ["PATCH", "", { stopLoss: 5 }]] as const) {
      const r = await orch.app.inject({ method, url: `/strategies/${ids[0]}${url ? `/${url}` : ""}`, headers, ...(payload ? { payload } : {}) });
      expect(r.statusCode, `${method} ${url}`).toBe(409);
      expect(r.json().error.code).toBe("STRATEGY_DELETED");
      expect(r.json().error.message).toMatch(new RegExp(`^strategy ${ids[0]} is deleted`));
    }
    // The scheduler: the deleted strategy is not due, however long since its last evaluation. Shown
    // by a live strategy of the same user, due since later, evaluated by the scheduler meanwhile (the
    // deleted one's turn came first), not by a pause a loaded machine may fill with no tick.
    const db = new pg.Client({ connectionString: srv.postgres.url });
    await db.connect();
    try {
      await db.query(`UPDATE ai_strategies SET enabled = true, last_evaluated_at = now() - interval '2 days' WHERE strategy_id = $1`, [ids[0]]);
      await db.query(`UPDATE ai_strategies SET last_evaluated_at = now() + interval '1 day' WHERE strategy_id <> $1`, [ids[0]]);
      await db.query(`UPDATE ai_strategies SET enabled = true, last_evaluated_at = now() - interval '1 day', eval_failures = 0, eval_retry_at = NULL WHERE strategy_id = $1`, [ids[1]]);
      const ticking = await createService(aiOrchestrator, { env: { ...srv.env, LOG_LEVEL: "silent", ORCH_TICK_MS: "50", SERVICE_ML_PREDICTOR_URL: mlUrl, SERVICE_ORDER_MANAGEMENT_URL: omUrl }, defaultMetrics: false });
      try {
        const live = `SELECT last_evaluated_at > now() - interval '1 hour' OR eval_failures > 0 AS done FROM ai_strategies WHERE strategy_id = $1`;
        await waitFor("the scheduler's turn of the live strategy", async () => (await db.query<{ done: boolean }>(live, [ids[1]])).rows[0].done, { timeoutMs: PATIENCE_MS });
      } finally {
        await ticking.close();
      }
      expect((await db.query(`SELECT count(*)::int AS n FROM ai_decisions WHERE strategy_id = $1`, [ids[0]])).rows[0].n).toBe(1);
    } finally {
      await db.query(`UPDATE ai_strategies SET last_evaluated_at = now()`);
      await db.end();
    }
  });

  it("a deleted strategy that never decided is purged ORCH_DELETED_RETENTION_DAYS after its delete (create and delete repeated grew the table); one with decisions stays with them", async () => {
    const headers = await who();
    const [never, decided, recent] = [(await create(headers)).json().strategyId, (await create(headers)).json().strategyId, (await create(headers)).json().strategyId] as string[];
    predictions = prediction(Math.floor(Date.now() / 60_000) * 60_000 - 60_000, 60_000);
    const evaluated = await orch.app.inject({ method: "POST", url: `/strategies/${decided}/evaluate`, headers });
    expect(evaluated.statusCode, evaluated.body).toBe(200);
    for (const id of [never, decided, recent]) expect((await orch.app.inject({ method: "DELETE", url: `/strategies/${id}`, headers })).statusCode).toBe(204);
    await db.query(`UPDATE ai_strategies SET deleted_at = now() - interval '2 days' WHERE strategy_id = ANY($1::uuid[])`, [[never, decided]]);
    expect(await purgeDeletedStrategies(db, 1, 5_000)).toBe(1);
    expect((await orch.app.inject({ url: `/strategies/${never}`, headers })).statusCode).toBe(404);
    const kept = await orch.app.inject({ url: `/strategies/${decided}`, headers });
    expect([kept.statusCode, kept.json().deletedAt === null]).toEqual([200, false]);
    expect((await orch.app.inject({ url: `/strategies/${decided}/decisions`, headers })).json().decisions).toHaveLength(1);
    // Within the retention: kept (GET answers its deletedAt, a repeated DELETE is a 204).
    expect((await orch.app.inject({ url: `/strategies/${recent}`, headers })).statusCode).toBe(200);
    expect(await purgeDeletedStrategies(db, 1, 5_000)).toBe(0);
    expect(await purgeDeletedStrategies(db, 0, 5_000)).toBeGreaterThanOrEqual(1);
    expect((await orch.app.inject({ url: `/strategies/${recent}`, headers })).statusCode).toBe(404);
  });

  it("decisions go ORCH_DECISION_RETENTION_DAYS after they were made, but a live strategy's still settling or filled ones (its position); a deleted strategy goes with its last decision", async () => {
    const headers = await who();
    const [live, deleted] = [(await create(headers)).json().strategyId, (await create(headers)).json().strategyId] as string[];
    const user = headers["x-user-id"];
    // [strategy, action, order id, order's final status, signed filled quantity, risk answer]
    const rows: Array<[string, string, string | null, string | null, string | null, string | null]> = [
      [live, "hold", null, null, null, null],
      [live, "buy", null, null, null, '{"approved":false}'], // refused by risk: no order
      [live, "buy", randomUUID(), "cancelled", "0", "{}"], // filled nothing
      [live, "buy", randomUUID(), "filled", "1", "{}"], // its position: kept
      [live, "sell", randomUUID(), null, null, "{}"], // order still working: kept
      [live, "sell", null, null, null, null], // outcome never recorded: kept (recover.ts)
      // A deleted strategy's all go: its last orders' outcomes are never recorded after the DELETE.
      [deleted, "skip", null, null, null, null],
      [deleted, "buy", randomUUID(), "filled", "1", "{}"],
      [deleted, "sell", randomUUID(), null, null, "{}"],
      [deleted, "buy", null, null, null, null],
    ];
    expect((await orch.app.inject({ method: "DELETE", url: `/strategies/${deleted}`, headers })).statusCode).toBe(204);
    const ids: string[] = [];
    for (const [strategy, action, orderId, final, filled, risk] of rows) {
      const id = randomUUID();
      ids.push(id);
      await db.query(
        `INSERT INTO ai_decisions (decision_id, strategy_id, user_id, symbol, decided_at, trading_state, position_before, action, reason, order_id, order_final_status, order_filled_signed, order_cash_flow, risk)
         VALUES ($1, $2, $3, 'AAAUSDT', now() - interval '3 days', 'active', 0, $4, 'test', $5, $6, $7, CASE WHEN $6::text IS NULL THEN NULL ELSE 0 END, $8::jsonb)`,
        [id, strategy, user, action, orderId, final, filled, risk],
      );
    }
    // Inserted after the DELETE (it has no order to cancel then), dated before it: their bound is what the delete stores for decisions it finds (migration 0494).
    await db.query(
      `UPDATE ai_strategies SET deleted_at = now() - interval '2 days', oldest_decision_at = (SELECT min(decided_at) FROM ai_decisions WHERE strategy_id = $1) WHERE strategy_id = $1`,
      [deleted],
    );
    const left = async () => (await db.query<{ decision_id: string }>(`SELECT decision_id FROM ai_decisions WHERE decision_id = ANY($1::uuid[])`, [ids])).rows.map((r) => r.decision_id).sort();
    // Within the retention nothing goes; then, one pass with a batch of 1 deletes one, the oldest first.
    expect(await purgeOldDecisions(db, 4, 5_000)).toBe(0);
    expect(await purgeOldDecisions(db, 2, 1)).toBe(1);
    while ((await purgeOldDecisions(db, 2, 5_000)) > 0);
    expect(await left()).toEqual([ids[3], ids[4], ids[5]].sort());
    // The deleted strategy has no decision left: purged.
    expect((await orch.app.inject({ url: `/strategies/${deleted}`, headers })).statusCode).toBe(200);
    expect(await purgeDeletedStrategies(db, 1, 5_000)).toBeGreaterThanOrEqual(1);
    expect((await orch.app.inject({ url: `/strategies/${deleted}`, headers })).statusCode).toBe(404);
    expect((await orch.app.inject({ url: `/strategies/${live}`, headers })).statusCode).toBe(200);
    // The default and floor are compliance-monitor's audit trail's.
    for (const [v, ok] of [["1824", false], ["1825", true]] as const) {
      const started = createService(aiOrchestrator, { env: { ...srv.env, LOG_LEVEL: "silent", ORCH_TICK_MS: "0", ORCH_DECISION_RETENTION_DAYS: v }, defaultMetrics: false });
      if (ok) await (await started).close();
      else await expect(started).rejects.toThrow("ORCH_DECISION_RETENTION_DAYS must be >= 1825");
    }
  });

  it("changes a strategy's settings, checked as at creation; symbols stay", async () => {
    const headers = await who();
    const id = (await create(headers)).json().strategyId;
    const patch = (payload: unknown, h = headers) => orch.app.inject({ method: "PATCH", url: `/strategies/${id}`, headers: h, payload: payload as object });
    const ok = await patch({ buyAbove: 0.7, sellBelow: 0.3, orderQuantity: 2, maxPosition: 4, stopLoss: 50, everySeconds: 30, minRegimeAgreement: 0.5, name: "renamed", enabled: false });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ buyAbove: 0.7, sellBelow: 0.3, orderQuantity: 2, maxPosition: 4, stopLoss: 50, everySeconds: 30, minRegimeAgreement: 0.5, name: "renamed", enabled: false, symbols: ["AAAUSDT"] });
    // Checked against the settings it keeps: 0.8 is above the stored buyAbove 0.7.
    const crossed = await patch({ sellBelow: 0.8 });
    expect(crossed.statusCode).toBe(400);
    expect(crossed.json().error).toMatchObject({ field: "sellBelow", message: "sellBelow (0.8) must be below buyAbove (0.7)" });
    expect((await patch({ orderQuantity: 5 })).json().error).toMatchObject({ field: "orderQuantity" });
    // Quantities order-management would refuse (9 places, 13 digits): every buy would have failed.
    for (const orderQuantity of [1e-9, 0.123456789, 1e12]) expect((await patch({ orderQuantity, maxPosition: 1e12 })).json().error, String(orderQuantity)).toMatchObject({ field: "orderQuantity" });
    expect((await patch({ symbols: ["BBBUSDT"] })).json().error).toMatchObject({ field: "symbols" });
    expect((await patch({})).statusCode).toBe(400);
    expect((await patch({ stopLoss: -1 })).json().error).toMatchObject({ field: "stopLoss" });
    expect((await patch({ status: "active" })).json().error).toMatchObject({ field: "status" });
    expect((await orch.app.inject({ url: `/strategies/${id}`, headers })).json()).toMatchObject({ sellBelow: 0.3, orderQuantity: 2, enabled: false });
    // Re-enabling a strategy its loss stop stopped re-arms it, as POST /enable does.
    const db = new pg.Client({ connectionString: srv.postgres.url });
    await db.connect();
    await db.query(`UPDATE ai_strategies SET status = 'stopped', stopped_reason = 'test' WHERE strategy_id = $1`, [id]).finally(() => db.end());
    expect((await patch({ stopLoss: 60 })).json()).toMatchObject({ status: "stopped", stopLoss: 60 });
    expect((await patch({ enabled: true })).json()).toMatchObject({ status: "active", stoppedReason: null, enabled: true });
  });

  it("a disabled strategy's evaluation is refused (409), and a disable during one stops its orders", async () => {
    const headers = await who();
    const id = (await orch.app.inject({ method: "POST", url: "/strategies", headers, payload: { ...body, enabled: false } })).json().strategyId;
    predictions = prediction(Math.floor(Date.now() / 60_000) * 60_000 - 60_000, 60_000);
    const before = orders.length;
    const r = await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers });
    expect(r.statusCode).toBe(409);
    expect(r.json().error).toMatchObject({ code: "STRATEGY_DISABLED", message: `strategy ${id} is disabled: enable it to evaluate it (an evaluation places orders)` });
    expect(orders.length).toBe(before);
    expect((await orch.app.inject({ url: `/strategies/${id}/decisions`, headers })).json().decisions).toEqual([]);

    expect((await orch.app.inject({ method: "POST", url: `/strategies/${id}/enable`, headers })).json().enabled).toBe(true);
    // The disable answers once the evaluation is over (it may be submitting an order): the prediction
    // goes on once the disable is committed, not answered.
    let disabled: Promise<{ statusCode: number }> | undefined;
    duringPredict = async () => {
      disabled = orch.app.inject({ method: "POST", url: `/strategies/${id}/disable`, headers });
      await waitFor("the disable committed", async () => (await db.query("SELECT enabled FROM ai_strategies WHERE strategy_id = $1", [id])).rows[0].enabled === false, { timeoutMs: 30_000, intervalMs: 10 });
    };
    try {
      const [d] = (await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers })).json().decisions;
      expect(d).toMatchObject({ action: "skip", reason: "strategy disabled during the evaluation", orderId: null });
    } finally {
      duringPredict = async () => undefined;
    }
    expect((await disabled!).statusCode).toBe(200);
    expect(orders.length).toBe(before);
  });

  it("a strategy whose owner's account an admin disabled or deleted places no order: never due; a disabled owner's evaluation skips, a deleted one's records nothing (403)", async () => {
    const headers = await who();
    const user = headers["x-user-id"];
    const id = (await create(headers)).json().strategyId;
    const store = new OrchestratorStore(orch.app.pg);
    const due = async () => (await store.due(10_000)).some((s) => s.strategyId === id);
    const evaluate = async () => (await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers })).json().decisions[0];
    predictions = prediction(Math.floor(Date.now() / 60_000) * 60_000 - 60_000, 60_000);
    const before = orders.length;
    expect(await due()).toBe(true);
    // Disabled while the prediction is computed: the decision that follows places nothing.
    duringPredict = () => db.query("UPDATE users SET disabled_at = now() WHERE id = $1", [user]);
    try {
      expect(await evaluate()).toMatchObject({ action: "skip", reason: "the owner's account disabled: no orders", orderId: null });
    } finally {
      duringPredict = async () => undefined;
    }
    await db.query("UPDATE ai_strategies SET last_evaluated_at = NULL WHERE strategy_id = $1", [id]);
    expect(await due()).toBe(false);
    expect(await evaluate()).toMatchObject({ action: "skip", reason: "the owner's account disabled: no orders", orderId: null });
    await db.query("UPDATE users SET disabled_at = NULL WHERE id = $1", [user]);
    await db.query("UPDATE ai_strategies SET last_evaluated_at = NULL WHERE strategy_id = $1", [id]);
    expect(await due()).toBe(true);
    // Deleted (its tombstone, as user-management deletes) while the prediction is computed: the
    // evaluation's next decision reads it under the account's lock and records nothing; 403.
    const recorded = async () => (await db.query("SELECT count(*)::int AS n FROM ai_decisions WHERE strategy_id = $1", [id])).rows[0].n;
    const decided = await recorded();
    duringPredict = async () => void (await deleteUser(db, user));
    try {
      const r = await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers });
      expect([r.statusCode, r.json().error.code, r.json().error.field]).toEqual([403, "ACCOUNT_DELETED", "userId"]);
    } finally {
      duringPredict = async () => undefined;
    }
    expect(await due()).toBe(false);
    expect(await recorded()).toBe(decided);
    // No failure backoff: a deletion is not the strategy's failure.
    expect((await store.getStrategy(id))?.evaluationBackoff.consecutiveFailures).toBe(0);
    expect(orders.length).toBe(before);
  });

  it("a DELETE while an evaluation submits an order waits for it, then cancels that order too", async () => {
    const headers = await who();
    const id = (await create(headers)).json().strategyId;
    predictions = prediction(Math.floor(Date.now() / 60_000) * 60_000 - 60_000, 60_000);
    let deletion: Promise<{ statusCode: number }> | undefined;
    // The evaluation read the strategy enabled and is submitting its buy when the DELETE comes in.
    duringSubmit = async () => {
      duringSubmit = async () => undefined;
      deletion = orch.app.inject({ method: "DELETE", url: `/strategies/${id}`, headers });
      // Until the DELETE has marked it deleted (it then waits for this evaluation), not a 300 ms pause.
      await waitFor("the DELETE's mark", async () => (await db.query("SELECT 1 FROM ai_strategies WHERE strategy_id = $1 AND deleted_at IS NOT NULL", [id])).rows.length === 1, { timeoutMs: PATIENCE_MS, intervalMs: 10 });
    };
    try {
      const [d] = (await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers })).json().decisions;
      expect(d).toMatchObject({ action: "buy" });
      expect((await deletion!).statusCode).toBe(204);
      // Its order was recorded after the DELETE marked the strategy deleted: cancelled all the same.
      expect(cancels).toContain(d.orderId);
      expect(orders.find((o) => o.orderId === d.orderId)!.status).toBe("pending_cancel");
    } finally {
      duringSubmit = async () => undefined;
    }
  });

  it("creation under an Idempotency-Key: a retry answers the same strategy, another body is a 409 naming the key, concurrent ones make one", async () => {
    const headers = await who();
    const post = (key: string, payload: object = body, h: Record<string, string> = headers) =>
      orch.app.inject({ method: "POST", url: "/strategies", headers: { ...h, "idempotency-key": key }, payload });
    const first = await post("k-1");
    expect(first.statusCode).toBe(201);
    const again = await post("k-1", { ...body, minRegimeAgreement: 0, everySeconds: 60 });
    expect(again.statusCode).toBe(200);
    expect(again.headers["idempotent-replay"]).toBe("true");
    expect(again.json().strategyId).toBe(first.json().strategyId);
    const other = await post("k-1", { ...body, name: "other" });
    expect(other.statusCode).toBe(409);
    expect(other.json().error).toMatchObject({ code: "IDEMPOTENCY_KEY_REUSED", field: "idempotency-key" });
    expect(other.json().error.message).toMatch(/^Idempotency-Key k-1 was used with a different request body/);
    expect((await post("bad key!")).json().error).toMatchObject({ code: "VALIDATION_ERROR", field: "idempotency-key" });
    // Keys are per user: another user's k-1 is a new strategy.
    const stranger = await post("k-1", body, await who());
    expect(stranger.statusCode).toBe(201);
    expect(stranger.json().strategyId).not.toBe(first.json().strategyId);

    const answers = await Promise.all(Array.from({ length: 6 }, () => post("k-2")));
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    expect(new Set(answers.map((a) => a.json().strategyId)).size).toBe(1);
    expect((await orch.app.inject({ url: "/strategies", headers })).json().strategies).toHaveLength(2);
    // At the limit, a retry is still answered (it creates nothing).
    await create(headers);
    expect((await create(headers)).statusCode).toBe(409);
    expect((await post("k-2")).statusCode).toBe(200);
  });

  it("asks order-management only about the strategy's orders not yet final", async () => {
    const headers = await who();
    const id = (await orch.app.inject({ method: "POST", url: "/strategies", headers, payload: { ...body, maxPosition: 100 } })).json().strategyId;
    predictions = prediction(Math.floor(Date.now() / 60_000) * 60_000 - 60_000, 60_000);
    const evaluate = async () => {
      const from = lookups;
      const [d] = (await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers })).json().decisions;
      return { d, calls: lookups - from };
    };
    const placed: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { d, calls } = await evaluate();
      expect(calls).toBe(i); // each earlier order is still working
      placed.push(d.orderId);
    }
    for (const orderId of placed) Object.assign(orders.find((o) => o.orderId === orderId)!, { status: "filled", filledQuantity: "1", avgFillPrice: "100", fees: "0.1" });
    const settling = await evaluate();
    expect(settling.calls).toBe(5);
    expect(settling.d).toMatchObject({ action: "buy", positionBefore: 5 });
    // The five are final and kept: only the working sixth is asked about, and the position holds.
    const next = await evaluate();
    expect(next.calls).toBe(1);
    expect(next.d).toMatchObject({ action: "buy", positionBefore: 5 });
    Object.assign(orders.find((o) => o.orderId === settling.d.orderId)!, { status: "filled", filledQuantity: "1", avgFillPrice: "100", fees: "0.1" });
    Object.assign(orders.find((o) => o.orderId === next.d.orderId)!, { status: "cancelled" });
    expect((await evaluate()).d).toMatchObject({ positionBefore: 6 });
    const db = new pg.Client({ connectionString: srv.postgres.url });
    await db.connect();
    const settled = await db.query(`SELECT sum(order_filled_signed)::float8 AS q, sum(order_cash_flow)::float8 AS cash FROM ai_decisions WHERE strategy_id = $1`, [id]).finally(() => db.end());
    expect(settled.rows[0].q).toBe(6);
    expect(settled.rows[0].cash).toBeCloseTo(-600.6, 9);
  });

  it("a stale prediction's close neither trips the loss stop nor lets the evaluation act", async () => {
    const headers = await who();
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    const quote = (bySymbol: Record<string, { barTime: number; close: number }>) => () => ({
      modelVersion: "lgbm-test", intervalMs: 60_000, hasEdge: true,
      predictions: Object.entries(bySymbol).map(([symbol, q]) => ({ symbol, probabilityUp: 0.9, barTime: new Date(q.barTime).toISOString(), close: q.close, features: {}, regimeVector: [] })),
    });
    const id = (await orch.app.inject({ method: "POST", url: "/strategies", headers, payload: { ...body, symbols: ["AAAUSDT", "BBBUSDT"], stopLoss: 10 } })).json().strategyId;
    const evaluate = async () => (await orch.app.inject({ method: "POST", url: `/strategies/${id}/evaluate`, headers })).json().decisions;
    predictions = quote({ AAAUSDT: { barTime: minute - 60_000, close: 100 } });
    const [buy] = await evaluate();
    expect(buy.action).toBe("buy");
    Object.assign(orders.find((o) => o.orderId === buy.orderId)!, { status: "filled", filledQuantity: "1", avgFillPrice: "100" });
    const before = orders.length;
    // AAAUSDT's last close, two hours old, says a loss of 99 (past the stop of 10); BBBUSDT is fresh and says buy.
    predictions = quote({ AAAUSDT: { barTime: minute - 2 * 3_600_000, close: 1 }, BBBUSDT: { barTime: minute - 60_000, close: 50 } });
    const [a, b] = await evaluate();
    expect(a).toMatchObject({ symbol: "AAAUSDT", action: "skip" });
    expect(a.reason).toMatch(/^stale prediction/);
    expect(b).toMatchObject({ symbol: "BBBUSDT", action: "skip", orderId: null });
    expect(b.reason).toMatch(/^loss stop not judged: no fresh close for AAAUSDT \(stale prediction: its latest bar opened at /);
    expect(orders.length).toBe(before);
    expect((await orch.app.inject({ url: `/strategies/${id}`, headers })).json()).toMatchObject({ status: "active", stoppedReason: null });
    // Fresh again at the same loss: the stop trips.
    predictions = quote({ AAAUSDT: { barTime: minute - 60_000, close: 1 }, BBBUSDT: { barTime: minute - 60_000, close: 50 } });
    expect((await evaluate()).map((d: { reason: string }) => d.reason)).toEqual(["strategy stopped by its loss limit", "strategy stopped by its loss limit"]);
  });

  it("a timer key past what Node's timers take is refused at start, naming it (it fired every millisecond)", async () => {
    await expect(createService(aiOrchestrator, { env: { ...srv.env, LOG_LEVEL: "silent", ORCH_TICK_MS: "3000000000" }, defaultMetrics: false })).rejects.toThrow(/ORCH_TICK_MS/);
    await expect(createService(aiChainAnalytics, { env: { ...srv.env, LOG_LEVEL: "silent", CHAIN_POLL_MS: "3000000000" }, defaultMetrics: false })).rejects.toThrow(/CHAIN_POLL_MS/);
  });
});
