/**
 * Disabling a strategy while its evaluation is submitting an order (real PostgreSQL, Redis, a
 * private Kafka; order-management in-process behind a gate that holds order submissions; ml-predictor
 * stood in for by a small HTTP server answering a buy). The evaluation has read the strategy enabled
 * and recorded its buy; 10 impatient disables (5 `POST /disable`, 5 `PATCH {enabled: false}`, each on
 * its own connection) arrive while the order is held. None may answer before that order is placed:
 * a pause answered 200 must not be followed by an order of the strategy (before, every disable
 * answered at once and the order was placed after them). The interleaving is made, not waited for:
 * the ten queue on the strategy's row, locked by the test, until all ten are there; then they commit,
 * and a disable of another strategy, sent after the ten committed, answers while none of them has:
 * each would have answered by then had it not waited for the order. The same holds across processes: a second
 * ai-orchestrator on the same database (a replica) answers the disables and a DELETE while the first
 * one's evaluation submits (its in-process wait had seen nothing running and answered at once).
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
import { ensureAccount } from "../helpers/accounts";
import { bodyOf, listen } from "../helpers/http-stand-ins";
import { http, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("postgres", "redis");
const SYMBOL = "AAAUSDT";
const WAIT_MS = 60_000;
let rig: OrderPathRig;
let pool: InstanceType<typeof pg.Pool>;
let om: Service<any>;
let omUrl: string;
let orch: Service<any>;
let orchUrl: string;
/** A second ai-orchestrator on the same database: another replica. */
let orchB: Service<any>;
let orchBUrl: string;
let ml: Server;
let gate: Server;
/** Order submissions (POST /) the gate holds until released. */
const held: (() => void)[] = [];

const as = (userId: string) => ({ "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" });
// The ten disables each hold a connection while they queue on the row the test locked: room for them and the rest.
const orchEnv = (mlUrl: string, gateUrl: string) => ({ ...rig.env, ORCH_TICK_MS: "0", SERVICE_ML_PREDICTOR_URL: mlUrl, SERVICE_ORDER_MANAGEMENT_URL: gateUrl, POSTGRES_POOL_MAX: "20" });
const STRATEGY = { name: "s", symbols: [SYMBOL], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 1e9 };

beforeAll(async () => {
  rig = await startOrderPathRig(srv.env, { symbol: SYMBOL, lastPrice: "100", env: { LOG_LEVEL: "silent" } });
  pool = rig.pool;
  om = await createService(orderManagement, { env: rig.env, defaultMetrics: false });
  omUrl = await om.listen({ port: 0, host: "127.0.0.1" });
  // Forwards to order-management; an order submission waits for the test to release it.
  gate = createServer(async (req, res) => {
    const body = await bodyOf(req);
    if (req.method === "POST" && req.url === "/") await new Promise<void>((r) => held.push(r));
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith("x-") || k === "idempotency-key" || k === "content-type")) as Record<string, string>;
    const r = await fetch(`${omUrl}${req.url}`, { method: req.method, headers, body: body.length > 0 ? body : undefined });
    res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/json" }).end(Buffer.from(await r.arrayBuffer()));
  });
  const gateUrl = await listen(gate);
  ml = createServer((_req, res) => {
    const barTime = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000).toISOString();
    const body = { modelVersion: "lgbm-test", intervalMs: 60_000, predictions: [{ symbol: SYMBOL, probabilityUp: 0.9, barTime, close: 100, features: {}, regimeVector: [] }] };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
  });
  const mlUrl = await listen(ml);
  orch = await createService(aiOrchestrator, {
    env: orchEnv(mlUrl, gateUrl),
    defaultMetrics: false,
  });
  orchUrl = await orch.listen({ port: 0, host: "127.0.0.1" });
  orchB = await createService(aiOrchestrator, {
    env: orchEnv(mlUrl, gateUrl),
    defaultMetrics: false,
  });
  orchBUrl = await orchB.listen({ port: 0, host: "127.0.0.1" });
}, 300_000);

afterAll(async () => {
  held.splice(0).forEach((release) => release());
  await orch?.close().catch(() => undefined);
  await orchB?.close().catch(() => undefined);
  ml?.close();
  gate?.close();
  await om?.close().catch(() => undefined);
  await rig?.stop();
}, 60_000);

describe("disabling a strategy while its evaluation submits an order", () => {
  it("10 disables at once answer only after the order in flight is placed; none is placed after them", async () => {
    const { user, id, evaluation } = await evaluationHeldOnA();
    const { answeredAt, releasedAt, disables } = await tenDisablesThenRelease(orchUrl, user, id);

    const e = await evaluation;
    expect(e.status, JSON.stringify(e.body)).toBe(200);
    const [decision] = e.body.decisions;
    expect(decision).toMatchObject({ action: "buy" });
    expect(decision.orderId).toEqual(expect.any(String));
    for (const r of await disables) {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.enabled).toBe(false);
    }
    expect(answeredAt.filter((t) => t < releasedAt)).toEqual([]);
    // Paused: a later evaluation is refused and places nothing.
    expect((await http("POST", `${orchUrl}/strategies/${id}/evaluate`, { headers: as(user) })).status).toBe(409);
    expect(held).toHaveLength(0);
  }, 120_000);

  /** A new enabled strategy of a new user, and its evaluation started on instance A and held at the gate with its order. */
  async function evaluationHeldOnA() {
    const user = randomUUID();
    await ensureAccount(pool, user);
    const created = await http("POST", `${orchUrl}/strategies`, {
      headers: as(user),
      body: { ...STRATEGY, enabled: true },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.strategyId as string;
    const evaluation = http("POST", `${orchUrl}/strategies/${id}/evaluate`, { headers: as(user) });
    await waitUntil("the evaluation's order held at the gate", async () => held.length === 1, WAIT_MS, 20);
    return { user, id, evaluation };
  }

  /**
   * Resolves once `condition` (SQL over the strategy's row) holds: a disable or DELETE has committed
   * it and is now waiting for the evaluation's lease (lease.ts leasesGone), a positive sign that the
   * wait is under way however slowly a loaded machine got there.
   */
  const committed = (id: string, condition: string) =>
    waitUntil(`the strategy's row ${condition}`, async () => (await pool.query(`SELECT 1 FROM ai_strategies WHERE strategy_id = $1 AND ${condition}`, [id])).rows.length === 1, WAIT_MS, 20);

  /** The query each disable (and PATCH) queues on for the strategy's row (store.ts updateStrategy). */
  const ROW_LOCK = "SELECT * FROM ai_strategies WHERE strategy_id = $1 AND user_id = $2 FOR UPDATE";
  const queuedOnRow = async () =>
    (await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0`, [ROW_LOCK])).rows[0].n as number;
  /** Whether nobody holds the strategy's row lock now (a probe that takes it without waiting, and lets it go). */
  const rowFree = async (id: string) => {
    const c = await pool.connect();
    try {
      await c.query("BEGIN");
      await c.query("SELECT 1 FROM ai_strategies WHERE strategy_id = $1 FOR UPDATE NOWAIT", [id]);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === "55P03") return false; // lock_not_available
      throw e;
    } finally {
      await c.query("ROLLBACK");
      c.release();
    }
  };

  /**
   * A strategy of `user`'s with no evaluation, changed through `base` after the ones under test
   * committed: its answer comes after every step a change takes once committed (the wait for
   * evaluations, the answer), so a change under test that did not wait would have answered before it.
   */
  async function laterChangeAnswered(base: string, user: string, method: "POST" | "DELETE") {
    const other = await http("POST", `${base}/strategies`, { headers: as(user), body: STRATEGY });
    expect(other.status, JSON.stringify(other.body)).toBe(201);
    const path = `${base}/strategies/${other.body.strategyId}${method === "POST" ? "/disable" : ""}`;
    const r = await http(method, path, { headers: as(user) });
    expect(r.status, JSON.stringify(r.body)).toBe(method === "POST" ? 200 : 204);
  }

  /**
   * Ten disables (POST /disable and PATCH enabled:false, alternately) sent to `base` while the held
   * order waits at the gate. They queue on the strategy's row, which the test holds locked until all
   * ten are waiting for it; let go, each commits in turn. Once all ten have committed, a later
   * disable of another strategy answers (laterChangeAnswered) while none of the ten has; then the
   * order is let through. When each disable answered, and when the order was released.
   */
  async function tenDisablesThenRelease(base: string, user: string, id: string) {
    const answeredAt: number[] = [];
    const holder = await pool.connect();
    let disables: Promise<Awaited<ReturnType<typeof http>>[]>;
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM ai_strategies WHERE strategy_id = $1 FOR UPDATE", [id]);
      disables = Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 === 0
            ? http("POST", `${base}/strategies/${id}/disable`, { headers: as(user) })
            : http("PATCH", `${base}/strategies/${id}`, { headers: as(user), body: { enabled: false } })
          ).then((r) => (answeredAt.push(Date.now()), r)),
        ),
      );
      await waitUntil("all ten disables queued on the strategy's row", async () => (await queuedOnRow()) === 10, WAIT_MS, 20);
    } finally {
      await holder.query("COMMIT").catch(() => undefined);
      holder.release();
    }
    // None queued any more and the row free: every one of the ten took the lock in turn and committed.
    await waitUntil("all ten disables committed", async () => (await queuedOnRow()) === 0 && (await rowFree(id)), WAIT_MS, 20);
    await committed(id, "NOT enabled");
    await laterChangeAnswered(base, user, "POST");
    expect(answeredAt).toEqual([]);
    const releasedAt = Date.now();
    held.splice(0).forEach((release) => release());
    return { answeredAt, releasedAt, disables };
  }

  it("disables through another replica wait for the evaluation running in the first; no order after their answer", async () => {
    const { user, id, evaluation } = await evaluationHeldOnA();
    const { answeredAt, releasedAt, disables } = await tenDisablesThenRelease(orchBUrl, user, id);

    const e = await evaluation;
    expect(e.status, JSON.stringify(e.body)).toBe(200);
    expect(e.body.decisions[0]).toMatchObject({ action: "buy", orderId: expect.any(String) });
    for (const r of await disables) {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.enabled).toBe(false);
    }
    expect(answeredAt.filter((t) => t < releasedAt)).toEqual([]);
    // The order was committed before the first answer: order-management's clock and this one's are the machine's.
    const placed = await pool.query<{ at: Date }>(`SELECT created_at AS at FROM om_orders WHERE user_id = $1`, [user]);
    expect(placed.rows).toHaveLength(1);
    expect(placed.rows[0].at.getTime()).toBeLessThanOrEqual(Math.min(...answeredAt));
    // No live lease is left behind by a finished evaluation (its row stays a while, ended, with its answer: evaluation-answer.ts).
    expect((await pool.query(`SELECT 1 FROM ai_evaluation_leases WHERE strategy_id = $1 AND expires_at > clock_timestamp()`, [id])).rows).toEqual([]);
  }, 120_000);

  it("a DELETE through another replica waits for the first one's evaluation, then cancels the order it placed", async () => {
    const { user, id, evaluation } = await evaluationHeldOnA();
    let deletedAt = 0;
    const del = http("DELETE", `${orchBUrl}/strategies/${id}`, { headers: as(user) }).then((r) => ((deletedAt = Date.now()), r));
    await committed(id, "deleted_at IS NOT NULL");
    await laterChangeAnswered(orchBUrl, user, "DELETE");
    expect(deletedAt).toBe(0);
    const releasedAt = Date.now();
    held.splice(0).forEach((release) => release());
    const e = await evaluation;
    expect(e.status, JSON.stringify(e.body)).toBe(200);
    const orderId = e.body.decisions[0].orderId as string;
    expect(orderId).toEqual(expect.any(String));
    const d = await del;
    expect(d.status, JSON.stringify(d.body)).toBe(204);
    expect(deletedAt).toBeGreaterThanOrEqual(releasedAt);
    // The order was placed before the DELETE answered, so its cancel was asked for (or it had filled).
    const placed = await pool.query<{ at: Date }>(`SELECT created_at AS at FROM om_orders WHERE order_id = $1`, [orderId]);
    expect(placed.rows[0].at.getTime()).toBeLessThanOrEqual(deletedAt);
  }, 120_000);
});
