/**
 * ai-orchestrator as a real process (real PostgreSQL and Redis) receiving SIGTERM while an evaluation
 * of 20 symbols places its orders, each submit held 1.5 s by a stand-in order-management. The
 * submits are never cut (writes: their outcome would be unknown), and before session 53 the
 * evaluation went on submitting after the close began: 20 of them, 30 s, past SHUTDOWN_TIMEOUT_MS
 * (10 s), and the process was killed mid-evaluation (exit 1), a decision possibly left without its
 * order's outcome. Now no order is submitted once the close began: the submit in flight finishes, the
 * buys after it are recorded as refusals before any write of their own, the evaluation answers
 * 200 with every symbol's decision, and the process exits 0. Nothing half-written: every buy decision
 * has its order, and order-management received exactly those orders.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";
import { NOT_SUBMITTED_ON_CLOSE } from "../../services/src/services/ai-orchestrator/evaluate";
import { ensureAccount } from "../helpers/accounts";
import { bodyOf, listen } from "../helpers/http-stand-ins";
import { startServiceProcess } from "../helpers/service-process";
import { http, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("postgres", "redis");
const SYMBOLS = Array.from({ length: 20 }, (_, i) => `S${String.fromCharCode(65 + i)}USDT`);
const DRAIN_MS = 300;
/** How long the stand-in order-management holds each submit before it answers 201. */
const SUBMIT_MS = 1_500;
let db: InstanceType<typeof pg.Pool>;
let ml: Server;
let om: Server;
let mlUrl: string;
let omUrl: string;
/** The orders the stand-in order-management received: their Idempotency-Key (the decision) and the order id it answered. */
const submitted: Array<{ decisionId: string; orderId: string; symbol: string }> = [];

/** Fresh predictions that buy every symbol (P(up) 0.9 over buyAbove 0.6). */
const buyEverything = () => ({
  modelVersion: "lgbm-test",
  intervalMs: 60_000,
  predictions: SYMBOLS.map((symbol) => ({ symbol, probabilityUp: 0.9, barTime: new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000).toISOString(), close: 100, features: {}, regimeVector: [] })),
});

beforeAll(async () => {
  db = new pg.Pool({ connectionString: srv.postgres.url });
  await runPostgresMigrations(db, { dir: POSTGRES_MIGRATIONS_DIR });
  ml = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(buyEverything()));
  });
  mlUrl = await listen(ml);
  om = createServer(async (req, res) => {
    const body = JSON.parse((await bodyOf(req)).toString() || "{}");
    if (req.method !== "POST") return void res.writeHead(404, { "content-type": "application/json" }).end("{}");
    const order = { decisionId: String(req.headers["idempotency-key"]), orderId: randomUUID(), symbol: body.symbol };
    submitted.push(order);
    setTimeout(() => {
      res.writeHead(201, { "content-type": "application/json" }).end(
        JSON.stringify({ orderId: order.orderId, symbol: body.symbol, side: body.side, quantity: body.quantity, status: "accepted", filledQuantity: "0", avgFillPrice: null, fees: "0", rejectReason: null, rejectMessage: null }),
      );
    }, SUBMIT_MS);
  });
  omUrl = await listen(om);
}, 120_000);

afterAll(async () => {
  ml?.close();
  om?.closeAllConnections();
  om?.close();
  await db?.end();
});

describe("ai-orchestrator shutting down while an evaluation submits its orders", { timeout: 300_000 }, () => {
  it("the submit in flight finishes, the buys after it are recorded refusals, no order after the close began; 200 and exit 0 within the shutdown's budget", async () => {
    const orch = await startServiceProcess("ai-orchestrator", {
      ...srv.env, LOG_LEVEL: "info", ORCH_TICK_MS: "0", SHUTDOWN_DRAIN_MS: String(DRAIN_MS), SERVICE_ML_PREDICTOR_URL: mlUrl, SERVICE_ORDER_MANAGEMENT_URL: omUrl,
    });
    try {
      const user = randomUUID();
      await ensureAccount(db, user);
      const as = { "x-user-id": user, "x-user-role": "trader", "x-auth-method": "jwt" };
      const created = await http("POST", `${orch.url}/strategies`, {
        headers: as,
        body: { name: "twenty", symbols: SYMBOLS, buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 5, stopLoss: 1e9, everySeconds: 3_600, enabled: true },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const id = created.body.strategyId as string;
      const answer = http("POST", `${orch.url}/strategies/${id}/evaluate`, { headers: as });
      await waitUntil("two orders submitted", async () => submitted.length >= 2, 60_000, 20);
      const t0 = performance.now();
      orch.child.kill("SIGTERM");
      const r = await answer;
      const code = await orch.exited;
      const tookMs = performance.now() - t0;

      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(code, orch.out().slice(-2_000)).toBe(0);
      // The drain, the submit in flight and the refusals' inserts: within SHUTDOWN_TIMEOUT_MS (10 s), not 20 submits' 30 s.
      expect(tookMs).toBeLessThan(DRAIN_MS + 10_000);
      expect(orch.lines().filter((l) => l.level >= 50), "no error line").toEqual([]);

      const decisions = r.body.decisions as Array<{ symbol: string; action: string; reason: string; orderId: string | null }>;
      expect(decisions.map((d) => d.symbol)).toEqual(SYMBOLS);
      const bought = decisions.filter((d) => d.action === "buy");
      const refused = decisions.filter((d) => d.action === "skip");
      expect(bought.length).toBeGreaterThanOrEqual(2);
      expect(bought.length).toBeLessThan(SYMBOLS.length);
      expect(bought.length + refused.length).toBe(SYMBOLS.length);
      // The buys come first, in symbol order; every buy after them refused for the close, never submitted.
      expect(decisions.slice(0, bought.length).every((d) => d.action === "buy")).toBe(true);
      for (const d of refused) expect(d.reason).toBe(`${NOT_SUBMITTED_ON_CLOSE}; it would buy (P(up) 0.900 >= buyAbove 0.6)`);

      // Nothing half-written: each buy decision has the order order-management answered, and it received no other.
      const { rows } = await db.query(`SELECT decision_id, symbol, action, order_id, risk FROM ai_decisions WHERE strategy_id = $1 ORDER BY decided_at`, [id]);
      expect(rows).toHaveLength(SYMBOLS.length);
      const mine = submitted.filter((o) => rows.some((d) => d.decision_id === o.decisionId));
      expect(mine).toHaveLength(bought.length);
      for (const o of mine) expect(rows.find((d) => d.decision_id === o.decisionId)).toMatchObject({ action: "buy", symbol: o.symbol, order_id: o.orderId, risk: expect.objectContaining({ status: "accepted" }) });
      expect(rows.filter((d) => d.action === "buy" && d.order_id === null)).toEqual([]);
      // A whole evaluation: marked evaluated, its lease released with its answer.
      const { rows: [s] } = await db.query(`SELECT eval_failures, last_evaluated_at FROM ai_strategies WHERE strategy_id = $1`, [id]);
      expect(s.eval_failures).toBe(0);
      expect(s.last_evaluated_at).not.toBeNull();
    } finally {
      orch.child.kill("SIGKILL");
    }
  });
});
