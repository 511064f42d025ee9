/**
 * order-management applies a batch of executions in three round trips to PostgreSQL
 * (executions.ts applyExecutionsInTransaction: BEGIN with the orders' lock, the fills' insert, the
 * orders' UPDATE and the outbox insert with COMMIT; six before), the UPDATE and the insert written
 * with literals: a reason holding quotes and backslashes is stored and enqueued as given, the events
 * enqueued are the ones the relay is handed, and a redelivered batch changes nothing.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import { countRoundTrips, type RoundTrips } from "../helpers/round-trips";
import { migratedKitPostgres } from "../helpers/schemas";
import * as omData from "../../services/src/services/order-management/data";
import { outboxInsertStatement } from "../../services/src/trading/infra/outbox";
import { applyExecutionsInTransaction } from "../../services/src/services/order-management/executions";
import type { ExecutionMsg } from "../../services/src/trading/events";

const srv = useServers("postgres");
const log = { info() {}, debug() {}, error() {}, warn() {}, child() { return log; } } as unknown as Parameters<typeof applyExecutionsInTransaction>[2];
let client: PostgresClient;
/** Messages sent to PostgreSQL (each a round trip) by the pool's clients. */
let roundTrips: RoundTrips;

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log as unknown as Parameters<typeof createPostgres>[1], 2);
  roundTrips = countRoundTrips(client);
}, 300_000);

afterAll(async () => {
  await client?.close();
});

/** An accepted market order as order-management stores it. */
async function acceptedOrder(userId: string, quantity: string): Promise<string> {
  const orderId = randomUUID();
  const stored: omData.NewOrder = {
    orderId, userId, clientOrderId: orderId, idempotencyKey: null, requestHash: "h", symbol: "BTCUSDT", side: "buy", type: "market",
    timeInForce: "GTC", quantity, limitPrice: null, status: "accepted", rejectReason: null, rejectMessage: null, lastPrice: "100",
  };
  await client.transaction((_tx, _begun, _each, commitWith) => omData.insertOrdersAndCommit(commitWith, [stored], []), { prepared: [omData.INSERT_ORDERS, outboxInsertStatement("om_outbox")] });
  return orderId;
}

const fillOf = (orderId: string, userId: string, n: number, quantity: string, price: string): ExecutionMsg => ({
  eventId: `${orderId}:${n}`, type: "fill",
  fill: { fillId: `${orderId}:${n}`, orderId, userId, symbol: "BTCUSDT", side: "buy", quantity, price, fee: "0.01", liquidity: "taker", ts: Date.now() },
});

const orderOf = async (orderId: string) =>
  (await client.query("SELECT status, filled_quantity::text, avg_fill_price::text, fees::text, reject_reason FROM om_orders WHERE order_id = $1", [orderId])).rows[0];
const eventsOf = async (orderId: string) =>
  (await client.query<{ id: string; event_id: string; type: string; reason: string | null }>(
    "SELECT id::text, event_id, payload->>'type' AS type, payload->'order'->>'rejectReason' AS reason FROM om_outbox WHERE msg_key = $1 ORDER BY id",
    [orderId],
  )).rows;

describe("order-management's executions statements", () => {
  it("applies a batch in three round trips; a reason with quotes and backslashes is stored and enqueued as given; a redelivery changes nothing", async () => {
    const user = `u-${randomUUID()}`;
    const [filled, partial, rejected] = [await acceptedOrder(user, "2"), await acceptedOrder(user, "3"), await acceptedOrder(user, "1")];
    const reason = `it's \\ "odd" \\' ${"\u00e9"}`;
    const batch: ExecutionMsg[] = [
      fillOf(filled, user, 1, "1", "100"), fillOf(filled, user, 2, "1", "102"), fillOf(partial, user, 1, "1", "99.5"),
      { eventId: `${rejected}:rejected`, type: "order.rejected", orderId: rejected, userId: user, symbol: "BTCUSDT", reason, ts: Date.now() },
    ];
    roundTrips.reset();
    const outcome = await applyExecutionsInTransaction(client, batch, log);
    expect(roundTrips.count).toBe(3);
    expect(outcome.changed).toBe(3);
    expect(await orderOf(filled)).toEqual({ status: "filled", filled_quantity: "2", avg_fill_price: "101", fees: "0.02", reject_reason: null });
    expect(await orderOf(partial)).toMatchObject({ status: "partially_filled", filled_quantity: "1", avg_fill_price: "99.5" });
    expect(await orderOf(rejected)).toMatchObject({ status: "rejected", reject_reason: reason });
    const enqueued = [...(await eventsOf(filled)), ...(await eventsOf(partial)), ...(await eventsOf(rejected))];
    expect(enqueued.find((e) => e.type === "order.rejected")?.reason).toBe(reason);
    // The relay is handed exactly the rows this batch inserted.
    const batchRows = enqueued.filter((e) => e.type !== "order.accepted");
    expect(outcome.enqueued?.messages.map((m) => m.id).sort()).toEqual(batchRows.map((e) => e.id).sort());

    roundTrips.reset();
    const again = await applyExecutionsInTransaction(client, batch, log);
    expect(again).toMatchObject({ changed: 0, enqueued: undefined });
    expect(roundTrips.count).toBe(3); // BEGIN with the lock, the fills' insert (all duplicates), COMMIT
    expect(await orderOf(filled)).toMatchObject({ status: "filled", filled_quantity: "2" });
  });
});
