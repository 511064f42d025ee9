/**
 * order-management's and portfolio-manager's consumers apply a batch of `trading.executions` in two
 * round trips to PostgreSQL (the locks and reads sent with BEGIN, the writes with COMMIT: executions.ts
 * applyExecutionsBatch, fills.ts applyFillsBatch), on a real PostgreSQL: the same outcome as the same
 * statements sent one at a time (applyExecutions, applyFills) on twin orders and accounts, a fill
 * delivered twice in a batch counts once, a fill of an unknown order is ignored, a redelivered batch
 * changes nothing and enqueues nothing, and what the batch enqueued is what om_outbox holds.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PoolClient } from "pg";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import { migratedKitPostgres } from "../helpers/schemas";
import * as omData from "../../services/src/services/order-management/data";
import { applyExecutions, applyExecutionsBatch } from "../../services/src/services/order-management/executions";
import { applyFills, applyFillsBatch } from "../../services/src/services/portfolio-manager/fills";
import { outboxInsertStatement } from "../../services/src/trading/infra/outbox";
import type { ExecutionMsg } from "../../services/src/trading/events";
import type { Fill } from "../../services/src/trading/types";

const srv = useServers("postgres");
const warnings: string[] = [];
const log = { info() {}, debug() {}, error() {}, warn: (_o: unknown, msg: string) => warnings.push(msg), child: () => log } as unknown as Parameters<typeof createPostgres>[1] & Parameters<typeof applyExecutions>[2];
let client: PostgresClient;

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log, 2);
}, 300_000);

afterAll(async () => {
  await client?.close();
});

/**
 * The messages the kit's transactions send to PostgreSQL while `fn` runs (one per round trip), but the
 * PREPAREs a connection's first use of a statement costs (prepared once per connection, not per batch).
 */
async function roundTrips<T>(fn: () => Promise<T>): Promise<{ result: T; trips: string[] }> {
  const pool = client.pool as unknown as { connect(): Promise<PoolClient> };
  const connect = pool.connect;
  const trips: string[] = [];
  const patched: PoolClient[] = [];
  pool.connect = async function (this: unknown) {
    const c = await connect.call(this);
    if (patched.includes(c)) return c;
    const query = c.query;
    patched.push(c);
    (c as { query: unknown }).query = function (this: PoolClient, ...args: unknown[]) {
      const text = typeof args[0] === "string" ? args[0] : "";
      if (!/^(PREPARE|DEALLOCATE)\b/.test(text)) trips.push(text);
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    };
    return c;
  };
  try {
    return { result: await fn(), trips };
  } finally {
    pool.connect = connect;
    for (const c of patched) delete (c as { query?: unknown }).query;
  }
}

async function placeOrder(userId: string, side: "buy" | "sell", quantity: string): Promise<string> {
  const orderId = randomUUID();
  const order: omData.NewOrder = {
    orderId, userId, clientOrderId: `c-${orderId.slice(0, 8)}`, idempotencyKey: null, requestHash: "h", symbol: "BTCUSDT", side, type: "limit",
    timeInForce: "GTC", quantity, limitPrice: "100", status: "accepted", rejectReason: null, rejectMessage: null, lastPrice: "100",
  };
  await client.transaction((_tx, _begun, _each, commitWith) => omData.insertOrdersAndCommit(commitWith, [order], []), { prepared: [omData.INSERT_ORDERS, outboxInsertStatement("om_outbox")] });
  return orderId;
}

const fillOf = (userId: string, orderId: string, n: number, quantity: string, price: string, side: "buy" | "sell" = "buy"): Fill => ({
  fillId: `${orderId}:${n}`, orderId, userId, symbol: "BTCUSDT", side, quantity, price, fee: "0.01", liquidity: "maker", ts: Date.UTC(2027, 0, 4, 10, 0, n),
});
const fillMsg = (f: Fill): ExecutionMsg => ({ eventId: `${f.fillId}`, type: "fill", fill: f });

const orderState = async (orderId: string) =>
  (await client.query<{ status: string; filled: string; avg: string | null; fees: string }>(
    "SELECT status, filled_quantity::text AS filled, avg_fill_price::text AS avg, fees::text AS fees FROM om_orders WHERE order_id = $1", [orderId],
  )).rows[0];
const omEvents = async (orderId: string) =>
  (await client.query<{ id: string; event_id: string; type: string }>("SELECT id::text, event_id, payload->>'type' AS type FROM om_outbox WHERE msg_key = $1 ORDER BY id", [orderId])).rows;
const omFills = async (orderId: string) => Number((await client.query("SELECT count(*) AS n FROM om_order_fills WHERE order_id = $1", [orderId])).rows[0].n);
const omPosition = async (userId: string) => (await client.query<{ q: string }>("SELECT quantity::text AS q FROM om_positions WHERE user_id = $1", [userId])).rows[0]?.q;

describe("order-management's batch of executions", () => {
  it("is two round trips, with the outcome of the statements one at a time, and a redelivery changes nothing", async () => {
    // Twin orders: the batch path's (a) and the statement-at-a-time path's (b).
    const [userA, userB] = [randomUUID(), randomUUID()];
    const a = { full: await placeOrder(userA, "buy", "1"), part: await placeOrder(userA, "buy", "2") };
    const b = { full: await placeOrder(userB, "buy", "1"), part: await placeOrder(userB, "buy", "2") };
    const batchOf = (user: string, o: { full: string; part: string }) => {
      const full = fillMsg(fillOf(user, o.full, 1, "1", "101"));
      // The full fill twice in the batch (a redelivery inside one fetch), a partial fill, a fill of an order nobody placed.
      return [full, fillMsg(fillOf(user, o.part, 1, "0.5", "99")), full, fillMsg(fillOf(user, randomUUID(), 1, "1", "100"))];
    };
    // A first batch on its own prepares the statements on the connection (once per connection, not counted).
    await applyExecutionsBatch(client, [fillMsg(fillOf(randomUUID(), await placeOrder(randomUUID(), "sell", "1"), 1, "1", "100", "sell"))], log);

    warnings.length = 0;
    const { result: batched, trips } = await roundTrips(() => applyExecutionsBatch(client, batchOf(userA, a), log));
    expect(trips).toHaveLength(2);
    expect(trips[0]).toMatch(/^BEGIN/);
    expect(trips[1]).toMatch(/COMMIT$/);
    expect(warnings).toEqual(["fill for an unknown order ignored"]);
    const single = await client.transaction((c) => applyExecutions(c, batchOf(userB, b), log));

    for (const outcome of [batched, single]) {
      expect(outcome.changed).toBe(2);
      expect(outcome.fillLatencySeconds).toHaveLength(2);
      expect(outcome.enqueued?.messages).toHaveLength(2);
    }
    for (const [x, y] of [[a.full, b.full], [a.part, b.part]]) {
      expect(await orderState(x)).toEqual(await orderState(y));
      expect(await omFills(x)).toBe(1);
      expect((await omEvents(x)).map((e) => e.type)).toEqual((await omEvents(y)).map((e) => e.type));
    }
    expect(await orderState(a.full)).toEqual({ status: "filled", filled: "1", avg: "101", fees: "0.01" });
    expect((await orderState(a.part)).status).toBe("partially_filled");
    // What the batch hands the relay is what it inserted into om_outbox, in id order.
    const inserted = [...(await omEvents(a.full)), ...(await omEvents(a.part))].filter((e) => e.type !== "order.new" && e.type !== "order.accepted");
    expect(batched.enqueued!.messages.map((m) => [m.id, m.eventId])).toEqual(inserted.sort((x, y) => Number(x.id) - Number(y.id)).map((e) => [e.id, e.event_id]));
    // om_positions moves once per fill (the fills' trigger), as with the statements one at a time.
    expect(await omPosition(userA)).toBe("1.5");
    expect(await omPosition(userB)).toBe("1.5");

    // Redelivered: nothing written, nothing enqueued, no round trip but BEGIN's and COMMIT.
    const eventsBefore = (await omEvents(a.full)).length + (await omEvents(a.part)).length;
    const again = await roundTrips(() => applyExecutionsBatch(client, batchOf(userA, a), log));
    expect(again.result).toEqual({ changed: 0, enqueued: undefined, fillLatencySeconds: [] });
    expect(again.trips).toHaveLength(2);
    expect(again.trips[1]).toBe("COMMIT");
    expect((await omEvents(a.full)).length + (await omEvents(a.part)).length).toBe(eventsBefore);
    expect(await omFills(a.full)).toBe(1);
    expect(await omPosition(userA)).toBe("1.5");
  });
});

const pmState = async (userId: string) => ({
  cash: (await client.query<{ cash: string }>("SELECT cash::text FROM pm_accounts WHERE user_id = $1", [userId])).rows[0]?.cash,
  positions: (await client.query("SELECT symbol, quantity::text, avg_price::text, realized_pnl::text, fees::text FROM pm_positions WHERE user_id = $1 ORDER BY symbol", [userId])).rows,
  fills: (await client.query("SELECT order_id, side, quantity::text, price::text, realized_pnl::text, cash_delta::text FROM pm_fills WHERE user_id = $1 ORDER BY applied_seq", [userId])).rows,
});

describe("portfolio-manager's batch of fills", () => {
  it("is two round trips, with the outcome of the statements one at a time, and a redelivery changes nothing", async () => {
    const batchOf = (userId: string) => {
      const [o1, o2, o3] = ["o1", "o2", "o3"].map((o) => `${userId}-${o}`);
      const buy = fillOf(userId, o1, 1, "2", "100");
      // A buy, the same buy again, another buy and a sell that realizes PnL, applied in this order.
      return [buy, buy, fillOf(userId, o2, 1, "1", "130"), fillOf(userId, o3, 1, "1.5", "120", "sell")];
    };
    // Prepares the statements on the connection (once per connection, not counted).
    await applyFillsBatch(client, [fillOf(randomUUID(), `warm-up-${randomUUID()}`, 1, "1", "100")], "100000");

    const [userA, userB] = [randomUUID(), randomUUID()];
    const { result: applied, trips } = await roundTrips(() => applyFillsBatch(client, batchOf(userA), "100000"));
    expect(applied).toBe(3);
    expect(trips).toHaveLength(2);
    expect(trips[0]).toMatch(/^BEGIN/);
    expect(trips[1]).toMatch(/COMMIT$/);
    await client.transaction((tx) => applyFills(tx, batchOf(userB), "100000"));
    const [stateA, stateB] = [await pmState(userA), await pmState(userB)];
    expect(stateA.fills.map((f) => ({ ...f, order_id: String(f.order_id).replace(userA, "") }))).toEqual(stateB.fills.map((f) => ({ ...f, order_id: String(f.order_id).replace(userB, "") })));
    expect(stateA.positions).toEqual(stateB.positions);
    expect(stateA.cash).toBe(stateB.cash);
    expect(stateA.fills).toHaveLength(3);
    // 2 @ 100 and 1 @ 130, average 110; 1.5 sold at 120 realizes 15.
    expect(stateA.positions).toEqual([{ symbol: "BTCUSDT", quantity: "1.5", avg_price: "110", realized_pnl: "15", fees: "0.03" }]);

    const again = await roundTrips(() => applyFillsBatch(client, batchOf(userA), "100000"));
    expect(again.result).toBe(0);
    expect(again.trips).toEqual([expect.stringMatching(/^BEGIN/), "COMMIT"]);
    expect(await pmState(userA)).toEqual(stateA);
  });
});
