/**
 * The trading-engine's batch statements that save round trips, on a real PostgreSQL: which orders
 * are known travels with BEGIN as literals (only plain UUIDs are ever written into SQL), and the
 * orders and their fills go in one statement that still answers which fills are new (a redelivered
 * batch publishes no fill twice); a batch's last writes travel with its COMMIT.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import { migratedKitPostgres } from "../helpers/schemas";
import { promClient } from "../harness/deps";
import { BATCH_PREPARED, insertOrdersAndFills, KNOWN_ORDER_IDS, knownOrderIds, knownOrderIdsStatement, type EngineOrderRow } from "../../services/src/services/trading-engine/data";
import { BatchWork } from "../../services/src/services/trading-engine/batch";
import { outcomeEvent } from "../../services/src/services/trading-engine/messages";
import type { Fill } from "../../services/src/trading/types";

const srv = useServers("postgres");
const log = { info() {}, warn() {}, error() {} } as unknown as Parameters<typeof createPostgres>[1];
let client: PostgresClient;

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log, 2);
}, 300_000);

afterAll(async () => {
  await client?.close();
});

const row = (orderId: string): EngineOrderRow => ({
  order: { orderId, userId: "u-statements", symbol: "BTCUSDT", side: "buy", type: "market", quantity: "1" },
  status: "filled",
  remaining: "0",
  fillSeq: 1,
});
const fill = (orderId: string): Fill => ({ fillId: `${orderId}:1`, orderId, userId: "u-statements", symbol: "BTCUSDT", side: "buy", quantity: "1", price: "100", fee: "0.1", liquidity: "taker", ts: Date.now() });

describe("the engine's batch statements", () => {
  it("asks which orders are known together with BEGIN, and answers as the parameterised query", async () => {
    const [a, b, unknown] = [randomUUID(), randomUUID(), randomUUID()];
    await insertOrdersAndFills(client.pool, [row(a), row(b)], []);
    const ids = [a, b.toUpperCase(), unknown];
    const sql = knownOrderIdsStatement(ids);
    expect(sql).toBeDefined();
    const begun = await client.transaction(async (_tx, rows) => rows.map((r) => String(r.order_id)), { begin: sql, prepared: [KNOWN_ORDER_IDS] });
    expect(new Set(begun)).toEqual(new Set([a, b]));
    expect(new Set(begun)).toEqual(await knownOrderIds(client.pool, ids));
  });

  it("writes no id into SQL that is not a plain UUID", () => {
    for (const hostile of ["x'); DROP TABLE te_orders; --", `${randomUUID()}'`, `${randomUUID()},${randomUUID()}`, "{}", "", `${randomUUID()}\u0000`, `${randomUUID()} `])
      expect(knownOrderIdsStatement([randomUUID(), hostile])).toBeUndefined();
    expect(knownOrderIdsStatement([])).toBeUndefined();
  });

  it("inserts orders and fills in one statement and answers only the new fills", async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const first = await insertOrdersAndFills(client.pool, [row(a), row(b)], [fill(a), fill(b)]);
    expect(first).toEqual(new Set([`${a}:1`, `${b}:1`]));
    // Redelivered: nothing new, nothing duplicated.
    expect(await insertOrdersAndFills(client.pool, [row(a)], [fill(a)])).toEqual(new Set());
    const counts = await client.pool.query<{ orders: string; fills: string }>(
      "SELECT (SELECT count(*) FROM te_orders WHERE order_id = ANY($1::uuid[])) AS orders, (SELECT count(*) FROM te_fills WHERE order_id = ANY($1::uuid[])) AS fills",
      [[a, b]],
    );
    expect(counts.rows[0]).toEqual({ orders: "2", fills: "2" });
    // Fills alone (a bar filling resting orders) and orders alone still work.
    const c = randomUUID();
    expect(await insertOrdersAndFills(client.pool, [row(c)], [])).toEqual(new Set());
    expect(await insertOrdersAndFills(client.pool, [], [fill(c)])).toEqual(new Set([`${c}:1`]));
  });

  it("sends the last orders, fills and events with COMMIT: events in order, a fill's only when the fill is new", async () => {
    const fillsTotal = new promClient.Counter({ name: "test_engine_fills_total", help: "fills", labelNames: ["liquidity"], registers: [new promClient.Registry()] });
    const [a, b, rejected] = [randomUUID(), randomUUID(), randomUUID()];
    const commitBatch = (rows: EngineOrderRow[], fills: Fill[], outcomes: string[]) =>
      client.transaction(async (tx, _begun, _each, commitWith) => {
        const w = new BatchWork(tx, fillsTotal);
        w.rows.push(...rows);
        w.fills.push(...fills);
        for (const id of outcomes) w.events.push(outcomeEvent(row(id).order, "order.rejected", "TEST"));
        return w.commit(commitWith);
      }, { prepared: BATCH_PREPARED });
    const first = await commitBatch([row(a), row(b)], [fill(a), fill(b)], [rejected]);
    // The outcome pushed during the batch first, then the fills' events, in one id order.
    expect(first?.messages.map((m) => m.eventId)).toEqual([`${rejected}:exec:order.rejected`, `${a}:1`, `${b}:1`]);
    expect((await fillsTotal.get()).values.map((v) => v.value)).toEqual([2]);
    const stored = await client.pool.query("SELECT event_id FROM te_outbox WHERE event_id = ANY($1) ORDER BY id", [[`${rejected}:exec:order.rejected`, `${a}:1`, `${b}:1`]]);
    expect(stored.rows.map((r) => r.event_id)).toEqual([`${rejected}:exec:order.rejected`, `${a}:1`, `${b}:1`]);
    // Redelivered after the outbox rows went (its retention): the fill is not new, so no event and no count.
    await client.pool.query("DELETE FROM te_outbox WHERE event_id = $1", [`${a}:1`]);
    expect(await commitBatch([row(a)], [fill(a)], [])).toBeUndefined();
    expect((await fillsTotal.get()).values.map((v) => v.value)).toEqual([2]);
    // Nothing to write: nothing sent, the helper commits.
    expect(await commitBatch([], [], [])).toBeUndefined();
  });
});
