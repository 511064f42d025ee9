/**
 * The kill switch reaches orders already resting (real PostgreSQL, Redis, a private Kafka;
 * order-management and the trading-engine in-process). The state is written as risk-analyzer's
 * audited writer records it (trading_states + trading_state_changes, and the Dragonfly copy):
 *   - a halted user's resting buy is cancelled through the cancel path (pending_cancel, the engine
 *     confirms), its history says why (KILL_SWITCH), and a crossing bar fills nothing of it while it
 *     fills another user's;
 *   - reduce_only cancels the resting orders that would grow the position or flip it through zero,
 *     weighed together, and keeps the one that only reduces (which then fills);
 *   - a market order accepted before a halt and executed after it is held by the engine (never
 *     filled) and ends cancelled through the sweep;
 *   - a global halt recorded while order-management was down is acted on when it is back, for every
 *     user, once: two replicas sweeping together request each cancel one time.
 */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import type { pg, Redis } from "../harness";
import { sweepPassesRequestNothing } from "../helpers/order-path-rig";
import { useRestingOrdersRig } from "../helpers/resting-orders-rig";
import { TRADING_STATE_KEYS, type TradingState } from "../../services/src/trading/tradingState";
import { waitUntil } from "./e2e-helpers";

const SYMBOL = "ETHUSDT";
const SWEEP_MS = 100;
/** Bound of a wait: generous, it only guards against a hang on a loaded machine. */
const WAIT_MS = 120_000;
const services = useRestingOrdersRig({ symbol: SYMBOL, waitMs: WAIT_MS, env: { OM_KILL_SWITCH_SWEEP_MS: String(SWEEP_MS) } });
const { orderOf, resting, waitStatus, waitResting, sendBar, submit, limit, historyOf, engineFills, startOms, stopOms } = services;
let pool: InstanceType<typeof pg.Pool>;
let redis: InstanceType<typeof Redis>;
const ADMIN = randomUUID();

beforeAll(() => void ({ pool, redis } = services.rig));

/** The kill switch as risk-analyzer records a change: the scope's state, an audit row, the Dragonfly copy. */
async function setState(scope: "global" | { userId: string }, to: TradingState, reason: string): Promise<void> {
  const name = scope === "global" ? "global" : `user:${scope.userId}`;
  const c = await pool.connect();
  try {
    await c.query("BEGIN");
    const prev = await c.query("SELECT state FROM trading_states WHERE scope = $1 FOR UPDATE", [name]);
    await c.query("INSERT INTO trading_states (scope, state) VALUES ($1, $2) ON CONFLICT (scope) DO UPDATE SET state = $2, updated_at = now()", [name, to]);
    await c.query(
      "INSERT INTO trading_state_changes (scope, user_id, from_state, to_state, reason, changed_by, auth_method) VALUES ($1, $2, $3, $4, $5, $6, 'jwt')",
      [name, scope === "global" ? null : scope.userId, prev.rows[0]?.state ?? "active", to, reason, ADMIN],
    );
    await redis.set(scope === "global" ? TRADING_STATE_KEYS.global : TRADING_STATE_KEYS.user(scope.userId), to);
    await c.query("COMMIT");
  } finally {
    c.release();
  }
}

describe("kill switch: orders already resting", () => {
  it("halted: the user's resting buy is cancelled through the engine, marked KILL_SWITCH; a crossing bar fills nothing of it", async () => {
    const [halted, other] = [randomUUID(), randomUUID()];
    const mine = (await submit(halted, limit("buy", "1", "98"))).body;
    const theirs = (await submit(other, limit("buy", "1", "98"))).body;
    expect([mine.status, theirs.status]).toEqual(["accepted", "accepted"]);
    await waitResting(halted, [mine.orderId]);
    await waitResting(other, [theirs.orderId]);

    await setState({ userId: halted }, "halted", "fraud review #7");
    const done = await waitStatus(halted, mine.orderId, "cancelled");
    expect(done).toMatchObject({ filledQuantity: "0", rejectReason: "KILL_SWITCH" });
    expect(done.rejectMessage).toBe(`user:${halted} halted: fraud review #7`);
    expect((await pool.query("SELECT status FROM te_orders WHERE order_id = $1", [mine.orderId])).rows[0].status).toBe("cancelled");
    expect(await resting(halted)).toEqual([]);

    await sendBar("97.5", "97"); // crosses both limits at 98
    await waitStatus(other, theirs.orderId, "filled");
    expect(await engineFills(mine.orderId)).toBe(0);
    expect((await orderOf(halted, mine.orderId)).status).toBe("cancelled");
    // More passes change nothing: one cancel request, one confirmation.
    await sweepPassesRequestNothing(services.oms[0].service);
    expect(await historyOf(mine.orderId)).toEqual(["new", "accepted", "pending_cancel", "cancelled"]);
    await setState({ userId: halted }, "active", "review cleared");
  }, 300_000);

  it("reduce_only: the resting orders that would grow or flip the position are cancelled, the one that only reduces stays and fills", async () => {
    const user = randomUUID();
    const buy = (await submit(user, { symbol: SYMBOL, side: "buy", type: "market", quantity: "2" })).body;
    await waitStatus(user, buy.orderId, "filled");
    const reduces = (await submit(user, limit("sell", "1", "103"))).body; // 2 -> 1
    const flips = (await submit(user, limit("sell", "2", "104"))).body; // with the first: 2 -> -1
    const grows = (await submit(user, limit("buy", "1", "96"))).body; // 2 -> 3
    await waitResting(user, [reduces.orderId, flips.orderId, grows.orderId]);

    await setState({ userId: user }, "reduce_only", "position review");
    for (const o of [flips, grows]) {
      const done = await waitStatus(user, o.orderId, "cancelled");
      expect(done).toMatchObject({ filledQuantity: "0", rejectReason: "KILL_SWITCH", rejectMessage: `user:${user} reduce_only: position review` });
    }
    await sweepPassesRequestNothing(services.oms[0].service);
    expect(await orderOf(user, reduces.orderId)).toMatchObject({ status: "accepted", rejectReason: null });
    expect(await resting(user)).toEqual([reduces.orderId]);

    await sendBar("100", "95", "105"); // crosses all three limits
    await waitStatus(user, reduces.orderId, "filled");
    expect(await engineFills(flips.orderId)).toBe(0);
    expect(await engineFills(grows.orderId)).toBe(0);
    await waitUntil("position 1", async () => (await pool.query("SELECT quantity::text AS q FROM om_positions WHERE user_id = $1", [user])).rows[0]?.q === "1", WAIT_MS);
    await setState({ userId: user }, "active", "review cleared");
  }, 300_000);

  it("a market order accepted before the halt reaches the engine after it: held, never filled; the sweep's cancel ends it KILL_SWITCH", async () => {
    const user = randomUUID();
    await services.stopEngine(); // the order waits in Kafka while the halt is recorded
    const order = (await submit(user, { symbol: SYMBOL, side: "buy", type: "market", quantity: "1" })).body;
    expect(order.status).toBe("accepted");
    await setState({ userId: user }, "halted", "late order");
    await services.startEngine();

    const done = await waitStatus(user, order.orderId, "cancelled");
    expect(done).toMatchObject({ filledQuantity: "0", rejectReason: "KILL_SWITCH", rejectMessage: `user:${user} halted: late order` });
    expect((await pool.query("SELECT status FROM te_orders WHERE order_id = $1", [order.orderId])).rows[0].status).toBe("cancelled");
    expect(await engineFills(order.orderId)).toBe(0);
    await sweepPassesRequestNothing(services.oms[0].service);
    expect(await historyOf(order.orderId)).toEqual(["new", "accepted", "pending_cancel", "cancelled"]);
    await setState({ userId: user }, "active", "review cleared");
  }, 300_000);

  it("a global halt recorded while order-management was down: once back (two replicas), every user's open orders are cancelled once", async () => {
    const users = [randomUUID(), randomUUID()];
    const orders = [];
    for (const u of users) orders.push((await submit(u, limit("buy", "1", "97"))).body);
    for (const [i, u] of users.entries()) await waitResting(u, [orders[i].orderId]);

    await stopOms();
    await setState("global", "halted", "exchange incident");
    await startOms(2);
    for (const [i, u] of users.entries()) {
      const done = await waitStatus(u, orders[i].orderId, "cancelled");
      expect(done).toMatchObject({ rejectReason: "KILL_SWITCH", rejectMessage: "global halted: exchange incident" });
    }
    await sweepPassesRequestNothing(services.oms[0].service);
    for (const o of orders) expect(await historyOf(o.orderId)).toEqual(["new", "accepted", "pending_cancel", "cancelled"]);
    expect((await submit(users[0], limit("buy", "1", "97"))).body.rejectReason).toBe("TRADING_HALTED");

    await setState("global", "active", "incident resolved");
    const after = (await submit(users[0], limit("buy", "1", "97"))).body;
    expect(after.status).toBe("accepted");
    await waitResting(users[0], [after.orderId]);
    await sweepPassesRequestNothing(services.oms[0].service);
    expect((await orderOf(users[0], after.orderId)).status).toBe("accepted");
  }, 300_000);
});
