/**
 * Deleting an account reaches its orders (real PostgreSQL, Redis, a private Kafka; order-management
 * and the trading-engine in-process). The deletion is user-management's own (data.deleteUser, what
 * `DELETE /admin/users/:id` commits: the row and its tombstone in deleted_users):
 *   - a deleted account's resting buy is cancelled through the cancel path (pending_cancel, the engine
 *     confirms), marked ACCOUNT_DELETED, and a crossing bar fills nothing of it while it fills another
 *     account's;
 *   - an order sent for the account after the deletion committed is refused (403 naming userId),
 *     nothing stored, under a fresh Idempotency-Key or one it used before;
 *   - an account deleted while order-management was down: its resting order is cancelled once it is back;
 *   - the trading-engine fills no order of a deleted account, even before order-management's sweep has
 *     cancelled it (a crossing bar while order-management is down: session 41; it filled before);
 *   - the write window (tests/helpers/deletion-window.ts forces each interleaving with held transactions):
 *     an order whose submit checked the account before the deletion ran makes the deletion wait for its
 *     COMMIT (and the sweep then cancels it); one submitted while the deletion is not committed waits for
 *     it and is refused, nothing stored. Before session 50 the deletion did not wait (the order committed
 *     after the deletion's answer), and the order read no tombstone and was stored.
 * Before the fix the deleted account's orders kept resting (and filled) and its new orders were accepted.
 */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import type { pg } from "../harness";
import { sweepPassesRequestNothing } from "../helpers/order-path-rig";
import { useRestingOrdersRig } from "../helpers/resting-orders-rig";
import { ensureAccount } from "../helpers/accounts";
import { deletionWindow, type Gate } from "../helpers/deletion-window";
import { deleteUser } from "../../services/src/services/user-management/data";
import { waitUntil } from "./e2e-helpers";

const SYMBOL = "ETHUSDT";
const SWEEP_MS = 100;
/** Bound of a wait: generous, it only guards against a hang on a loaded machine. */
const WAIT_MS = 120_000;
// The longest submit deadline: a submit held at its insert by the window's gate must not run out meanwhile.
const services = useRestingOrdersRig({ symbol: SYMBOL, waitMs: WAIT_MS, env: { OM_KILL_SWITCH_SWEEP_MS: String(SWEEP_MS), OM_SUBMIT_DEADLINE_MS: "3000" } });
const { resting, waitStatus, waitResting, sendBar, submit, limit, historyOf, engineFills } = services;
let env: Record<string, string>;
let pool: InstanceType<typeof pg.Pool>;
const storedOrders = async (userId: string) => (await pool.query("SELECT order_id FROM om_orders WHERE user_id = $1", [userId])).rowCount;
const startOm = () => services.startOms(1);
const stopOm = () => services.stopOms();

beforeAll(() => void ({ env, pool } = services.rig));

describe("account deletion: the account's orders", () => {
  it("a deleted account's resting buy is cancelled through the engine, marked ACCOUNT_DELETED; a crossing bar fills nothing of it", async () => {
    const [gone, other] = [randomUUID(), randomUUID()];
    for (const u of [gone, other]) await ensureAccount(pool, u);
    const mine = (await submit(gone, limit("buy", "1", "98"))).body;
    const theirs = (await submit(other, limit("buy", "1", "98"))).body;
    expect([mine.status, theirs.status]).toEqual(["accepted", "accepted"]);
    await waitResting(gone, [mine.orderId]);
    await waitResting(other, [theirs.orderId]);

    expect(await deleteUser(pool, gone)).toBe(true);
    const done = await waitStatus(gone, mine.orderId, "cancelled");
    expect(done).toMatchObject({ filledQuantity: "0", rejectReason: "ACCOUNT_DELETED", rejectMessage: `user:${gone} halted: account deleted` });
    expect((await pool.query("SELECT status FROM te_orders WHERE order_id = $1", [mine.orderId])).rows[0].status).toBe("cancelled");
    expect(await resting(gone)).toEqual([]);

    await sendBar("97.5", "97"); // crosses both limits at 98
    await waitStatus(other, theirs.orderId, "filled");
    expect(await engineFills(mine.orderId)).toBe(0);
    await sweepPassesRequestNothing(services.oms[0].service);
    expect(await historyOf(mine.orderId)).toEqual(["new", "accepted", "pending_cancel", "cancelled"]);
  }, 300_000);

  it("an order sent after the deletion committed is refused with a 4xx naming userId, nothing stored, a replayed key included", async () => {
    const gone = randomUUID();
    await ensureAccount(pool, gone);
    const key = `k-${randomUUID()}`;
    const before = await submit(gone, limit("buy", "1", "96"), key);
    expect([before.status, before.body.status]).toEqual([201, "accepted"]);
    expect(await deleteUser(pool, gone)).toBe(true);

    for (const [body, k] of [[{ symbol: SYMBOL, side: "buy", type: "market", quantity: "1" }, undefined], [limit("buy", "1", "96"), key]] as const) {
      const r = await submit(gone, body, k);
      expect(r.status).toBe(403);
      expect(r.body.error).toMatchObject({ code: "ACCOUNT_DELETED", field: "userId" });
      expect(JSON.stringify(r.body)).not.toMatch(/deleted_users|stack/);
    }
    expect(await storedOrders(gone)).toBe(1); // only the order placed before the deletion (cancelled by the sweep)
    await waitStatus(gone, before.body.orderId, "cancelled");
  }, 300_000);

  it("an account deleted while order-management was down: its resting order is cancelled once it is back", async () => {
    const gone = randomUUID();
    await ensureAccount(pool, gone);
    const order = (await submit(gone, limit("buy", "1", "96"))).body;
    await waitResting(gone, [order.orderId]);
    await stopOm();
    expect(await deleteUser(pool, gone)).toBe(true);
    await startOm();
    expect(await waitStatus(gone, order.orderId, "cancelled")).toMatchObject({ rejectReason: "ACCOUNT_DELETED" });
    await sendBar("95", "95");
    expect(await engineFills(order.orderId)).toBe(0);
  }, 300_000);

  it("the engine fills no order of a deleted account before the sweep cancels it; another account's fills", async () => {
    const [gone, other] = [randomUUID(), randomUUID()];
    for (const u of [gone, other]) await ensureAccount(pool, u);
    await sendBar("100"); // above the limits (an earlier case's bar may be below them)
    const mine = (await submit(gone, limit("buy", "1", "96"))).body;
    const theirs = (await submit(other, limit("buy", "1", "96"))).body;
    expect([mine.status, theirs.status], JSON.stringify([mine, theirs])).toEqual(["accepted", "accepted"]);
    await waitResting(gone, [mine.orderId]);
    await waitResting(other, [theirs.orderId]);
    // No sweep while order-management is down: only the engine stands between the deletion and a fill.
    await stopOm();
    expect(await deleteUser(pool, gone)).toBe(true);
    await sendBar("95.5", "95"); // crosses both limits at 96
    await waitUntil("the other account's order filled", async () => (await engineFills(theirs.orderId)) === 1, WAIT_MS);
    expect(await engineFills(mine.orderId)).toBe(0);
    expect(await resting(gone)).toEqual([mine.orderId]);
    await startOm();
    expect(await waitStatus(gone, mine.orderId, "cancelled")).toMatchObject({ filledQuantity: "0", rejectReason: "ACCOUNT_DELETED" });
  }, 300_000);

  it("an order checked before the deletion ran: the deletion waits for its COMMIT, and the sweep cancels it", async () => {
    const gone = randomUUID();
    await ensureAccount(pool, gone);
    // The gate: a row of the order's Idempotency-Key, not committed (the submit's insert waits on the unique key; rolled back after).
    const key = `window-${randomUUID()}`;
    const gate: Gate = (c) => c.query("INSERT INTO om_orders (order_id, user_id, client_order_id, idempotency_key, request_hash, symbol, side, type, quantity, status) VALUES ($1, $2, 'gate', $3, 'gate', $4, 'buy', 'market', 1, 'rejected')", [randomUUID(), gone, key, SYMBOL]);
    const r = await deletionWindow(env.POSTGRES_URL).writeFirst(gone, gate, () => submit(gone, limit("buy", "1", "96"), key));
    expect(r.deletionWaited, "the deletion waited for the submit's transaction").toBe(true);
    expect([r.write.status, r.write.body.status, r.deleted]).toEqual([201, "accepted", true]);
    expect(await waitStatus(gone, r.write.body.orderId, "cancelled")).toMatchObject({ filledQuantity: "0", rejectReason: "ACCOUNT_DELETED" });
  }, 300_000);

  it("an order submitted while the deletion is not committed: it waits for it and is refused, nothing stored", async () => {
    const gone = randomUUID();
    await ensureAccount(pool, gone);
    const r = await deletionWindow(env.POSTGRES_URL).deletionFirst(gone, () => submit(gone, limit("buy", "1", "96")));
    expect(r.writeWaited, "the submit waited for the deletion").toBe(true);
    expect([r.write.status, r.write.body.error?.code, r.write.body.error?.field]).toEqual([403, "ACCOUNT_DELETED", "userId"]);
    expect(await storedOrders(gone)).toBe(0);
  }, 300_000);
});
