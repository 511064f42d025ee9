/**
 * ai-orchestrator against real PostgreSQL and Redis, its two peers stood in for by small HTTP
 * servers of this file (ml-predictor answers what a test sets, order-management records the
 * orders it is sent, working until a test fills them): a prediction from bars the market has left
 * behind places no order, a buy still working counts against maxPosition, and one user cannot keep
 * more strategies than ORCH_MAX_STRATEGIES_PER_USER, even with concurrent requests.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { pg, Redis } from "../harness";
import { TRADING_STATE_KEYS } from "../../services/src/trading/tradingState";
import { createService, type Service } from "../../services/src/kit";
import aiOrchestrator from "../../services/src/services/ai-orchestrator";
import aiChainAnalytics from "../../services/src/services/ai-chain-analytics";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";

const srv = useServers("postgres", "redis");
const MAX_STRATEGIES = 3;

/** What the stand-in ml-predictor answers next (a function of the symbols asked for). */
let predictions: (symbols: string[]) => unknown = () => ({});
/** The stand-in ml-predictor's status (409: e.g. no promoted model). */
let predictStatus = 200;
/** Done while the stand-in ml-predictor works on a request, before it answers. */
let duringPredict: () => Promise<unknown> = async () => undefined;
const orders: Array<Record<string, unknown>> = [];
const peers: Server[] = [];
let orch: Service;

async function peer(handle: (path: string, body: any) => { status: number; body: unknown } | Promise<{ status: number; body: unknown }>): Promise<string> {
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", async () => {
      const out = await handle(req.url ?? "/", text ? JSON.parse(text) : undefined);
      res.writeHead(out.status, { "content-type": "application/json" }).end(JSON.stringify(out.body));
    });
  });
  peers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const pool = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(pool, { dir: POSTGRES_MIGRATIONS_DIR });
  await pool.end();
  const ml = await peer(async (_path, body) => {
    await duringPredict();
    return predictStatus === 200 ? { status: 200, body: predictions(body.symbols) } : { status: predictStatus, body: { error: { code: "NO_PROMOTED_MODEL", message: "no model is promoted" } } };
  });
  const om = await peer((path, body) => {
    if (path !== "/") {
      const known = orders.find((o) => `/${o.orderId}` === path);
      return known ? { status: 200, body: known } : { status: 404, body: { error: { code: "NOT_FOUND", message: "no such order" } } };
    }
    const order = { orderId: randomUUID(), symbol: body.symbol, side: body.side, quantity: body.quantity, status: "accepted", filledQuantity: "0", avgFillPrice: null as string | null, fees: "0", rejectReason: null, rejectMessage: null };
    orders.push(order);
    return { status: 201, body: order };
  });
  orch = await createService(aiOrchestrator, {
    env: {
      ...srv.env, LOG_LEVEL: "silent", ORCH_TICK_MS: "0", SERVICE_ML_PREDICTOR_URL: ml, SERVICE_ORDER_MANAGEMENT_URL: om,
      ORCH_MAX_STRATEGIES_PER_USER: String(MAX_STRATEGIES),
    },
    defaultMetrics: false,
  });
}, 120_000);
afterAll(async () => {
  await orch?.close();
  for (const s of peers) s.close();
});

const who = () => ({ "x-user-id": randomUUID(), "x-user-role": "trader" });
const body = { name: "s", symbols: ["AAAUSDT"], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 1e9 };
const create = (headers: Record<string, string>) => orch.app.inject({ method: "POST", url: "/strategies", headers, payload: body });
const prediction = (barTime: number, intervalMs: number | undefined) => (symbols: string[]) => ({
  modelVersion: "lgbm-test", ...(intervalMs === undefined ? {} : { intervalMs }), hasEdge: true,
  predictions: symbols.map((symbol) => ({ symbol, probabilityUp: 0.9, barTime: new Date(barTime).toISOString(), close: 100, features: {}, regimeVector: [] })),
});

describe("ai-orchestrator", () => {
  it("acts on a fresh prediction, and records a stale one as a skip without an order", async () => {
    const headers = who();
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

  it("a buy still working counts against maxPosition: an evaluation before its fill orders nothing more", async () => {
    const headers = who();
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
    const headers = who();
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
    const headers = who();
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
    const headers = who();
    const codes = (await Promise.all(Array.from({ length: MAX_STRATEGIES + 3 }, () => create(headers)))).map((r) => r.statusCode);
    expect(codes.filter((c) => c === 201)).toHaveLength(MAX_STRATEGIES);
    expect(codes.filter((c) => c === 409)).toHaveLength(3);
    const over = await create(headers);
    expect(over.statusCode).toBe(409);
    expect(over.json().error).toMatchObject({ code: "CONFLICT", message: `at most ${MAX_STRATEGIES} strategies per user (a strategy is kept with its decisions)` });
    expect((await orch.app.inject({ url: "/strategies", headers })).json().strategies).toHaveLength(MAX_STRATEGIES);
    expect((await create(who())).statusCode).toBe(201);
  });

  it("a timer key past what Node's timers take is refused at start, naming it (it fired every millisecond)", async () => {
    await expect(createService(aiOrchestrator, { env: { ...srv.env, LOG_LEVEL: "silent", ORCH_TICK_MS: "3000000000" }, defaultMetrics: false })).rejects.toThrow(/ORCH_TICK_MS/);
    await expect(createService(aiChainAnalytics, { env: { ...srv.env, LOG_LEVEL: "silent", CHAIN_POLL_MS: "3000000000" }, defaultMetrics: false })).rejects.toThrow(/CHAIN_POLL_MS/);
  });
});
