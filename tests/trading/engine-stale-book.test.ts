/**
 * The trading-engine's in-memory book after a batch whose transaction failed while PostgreSQL could
 * not answer the rebuild either (real PostgreSQL; the outage is injected into the engine's client:
 * the batch's transaction does its work then loses its connection before COMMIT, and every statement
 * after it is refused as a refused connection until "PostgreSQL is back").
 *   - a crossing bar took a resting order out of the book, then rolled back: redelivered once the
 *     database is back, the fill is applied exactly once;
 *   - an order the failed attempt rested in memory: redelivered, it rests (not DUPLICATE_ORDER_ID)
 *     and a crossing bar fills it once; no order is both rejected and filled;
 *   - while the rebuild keeps failing, every batch is refused as an outage (retried by the consumer,
 *     never set aside) and nothing is written.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import { migratedKitPostgres } from "../helpers/schemas";
import type { TradingEngine } from "../../services/src/services/trading-engine/engine";
import { testEngine } from "../helpers/engine";
import type { EngineCommand } from "../../services/src/services/trading-engine/messages";
import { HandlerUnavailableError, isRetriable } from "../../services/src/trading/infra/deadLetters";
import type { Bar, OrderRequest } from "../../services/src/trading/types";
import { atCommit } from "../helpers/engine-records";

const srv = useServers("postgres");
/** A symbol of this file alone. */
const SYMBOL = `S${randomBytes(4).toString("hex").toUpperCase()}USDT`;
let client: PostgresClient;

const log = { info() {}, warn() {}, error() {} } as unknown as Parameters<typeof createPostgres>[1];
const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });

/**
 * The engine's PostgreSQL client with outage switches (the pool itself stays healthy for the test's
 * own reads): `down` refuses everything; `readsDown` only the statements outside a transaction (what
 * the rebuild runs), so a batch could commit while the book cannot be rebuilt; `failCommit` makes the
 * next transaction do its work, then lose its connection before COMMIT and leave PostgreSQL `down`
 * (or only its reads, with `failCommit: "reads"`).
 */
function flaky(real: PostgresClient) {
  const state: { down: boolean; readsDown: boolean; failCommit: false | "all" | "reads" } = { down: false, readsDown: false, failCommit: false };
  const pg: PostgresClient = {
    ...real,
    query: (text, values) => (state.down || state.readsDown ? Promise.reject(refused()) : real.query(text, values)),
    transaction: (fn, opts) =>
      state.down
        ? Promise.reject(refused())
        : real.transaction(
            (...args) =>
              atCommit(fn, args, () => {
                if (!state.failCommit) return;
                if (state.failCommit === "all") state.down = true;
                else state.readsDown = true;
                state.failCommit = false;
                throw Object.assign(new Error("Connection terminated unexpectedly"), { code: "ECONNRESET" });
              }),
            opts,
          ),
  };
  return { pg, state };
}

const engineOn = (pg: PostgresClient) =>
  testEngine({ pg, log });
const bar = (openTime: number, close: string, low = close): Bar => ({ symbol: SYMBOL, interval: "1m", openTime, closeTime: openTime + 59_999, open: close, high: close, low, close, volume: "1000" });
const limitBuy = (limitPrice: string): OrderRequest => ({ orderId: randomUUID(), userId: "u-stale", symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice });
const execute = (order: OrderRequest): EngineCommand => ({ kind: "execute", order });
const bars = (...b: Bar[]): EngineCommand => ({ kind: "bars", bars: b });

const fillsOf = async (orderId: string) => (await client.query<{ fill_id: string }>("SELECT fill_id FROM te_fills WHERE order_id = $1 ORDER BY fill_id", [orderId])).rows.map((r) => r.fill_id);
const statusOf = async (orderId: string) => (await client.query<{ status: string }>("SELECT status FROM te_orders WHERE order_id = $1", [orderId])).rows[0]?.status;
/** The te_outbox events of an order: what order-management and portfolio-manager will hear. */
const eventsOf = async (orderId: string) =>
  (await client.query<{ event_id: string; type: string }>("SELECT event_id, payload->>'type' AS type FROM te_outbox WHERE payload->>'orderId' = $1 OR payload->'fill'->>'orderId' = $1 ORDER BY id", [orderId])).rows;

/** The engine's book and last bar equal what a fresh engine loads from the database. */
async function expectBookMatchesDatabase(engine: TradingEngine): Promise<void> {
  const fresh = engineOn(client);
  await fresh.load();
  const ids = (e: TradingEngine) => [...e.restingOf()].filter((r) => r.order.symbol === SYMBOL).map((r) => `${r.order.orderId}:${r.remaining}`).sort();
  expect(ids(engine)).toEqual(ids(fresh));
  expect(engine.lastBar(SYMBOL)).toEqual(fresh.lastBar(SYMBOL));
}

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log, 4);
}, 300_000);

afterAll(async () => {
  await client?.close();
});

describe("trading-engine: a rolled-back batch whose rebuild failed", () => {
  it("a crossing bar that rolled back: redelivered after the outage, the fill is applied exactly once", async () => {
    const { pg, state } = flaky(client);
    const engine = engineOn(pg);
    await engine.load();
    const t0 = Date.UTC(2026, 1, 1);
    await engine.onBatch([bars(bar(t0, "100"))]);
    const resting = limitBuy("95");
    await engine.onBatch([execute(resting)]);
    expect(await statusOf(resting.orderId)).toBe("resting");

    // The bar crosses the order in memory; its transaction is lost, and PostgreSQL stays down.
    state.failCommit = "all";
    const crossing = bar(t0 + 60_000, "96", "94");
    await expect(engine.onBatch([bars(crossing)])).rejects.toThrow(/Connection terminated/);
    expect(await fillsOf(resting.orderId)).toEqual([]);

    // Redelivered while PostgreSQL is still down: refused as an outage, the consumer retries later.
    const refusedWhileDown = await engine.onBatch([bars(crossing)]).catch((e: unknown) => e);
    expect(isRetriable(refusedWhileDown)).toBe(true);

    // PostgreSQL is back: the redelivery rebuilds the book first, then the bar fills the order once.
    state.down = false;
    await engine.onBatch([bars(crossing)]);
    expect(await fillsOf(resting.orderId)).toEqual([`${resting.orderId}:1`]);
    expect(engine.isStale()).toBe(false);
    expect(await statusOf(resting.orderId)).toBe("filled");
    // Delivered again (at-least-once): nothing more.
    await engine.onBatch([bars(crossing)]);
    expect((await eventsOf(resting.orderId)).filter((e) => e.type === "fill").map((e) => e.event_id)).toEqual([`${resting.orderId}:1`]);
    await expectBookMatchesDatabase(engine);
  }, 120_000);

  it("an order the failed attempt rested: redelivered, it rests and fills once; it is never rejected DUPLICATE_ORDER_ID", async () => {
    const { pg, state } = flaky(client);
    const engine = engineOn(pg);
    await engine.load();
    const t0 = Date.UTC(2026, 1, 2);
    await engine.onBatch([bars(bar(t0, "100"))]);
    const order = limitBuy("95");

    state.failCommit = "all";
    await expect(engine.onBatch([execute(order)])).rejects.toThrow(/Connection terminated/);
    await expect(engine.onBatch([execute(order)])).rejects.toSatisfy(isRetriable);

    state.down = false;
    await engine.onBatch([execute(order)]);
    expect(await statusOf(order.orderId)).toBe("resting");
    await engine.onBatch([bars(bar(t0 + 60_000, "96", "94"))]);
    expect(await fillsOf(order.orderId)).toEqual([`${order.orderId}:1`]);
    const events = await eventsOf(order.orderId);
    expect(events.map((e) => e.type)).toEqual(["fill"]); // no order.rejected: order-management never hears of a duplicate
    await expectBookMatchesDatabase(engine);
  }, 120_000);

  it("while the rebuild fails, a batch that could commit is refused as an outage and writes nothing", async () => {
    const { pg, state } = flaky(client);
    const engine = engineOn(pg);
    await engine.load();
    const t0 = Date.UTC(2026, 1, 3);
    await engine.onBatch([bars(bar(t0, "100"))]);
    const resting = limitBuy("95");
    await engine.onBatch([execute(resting)]);

    // The crossing bar's transaction is lost; PostgreSQL takes transactions again but the rebuild's reads fail.
    state.failCommit = "reads";
    const crossing = bar(t0 + 60_000, "96", "94");
    await expect(engine.onBatch([bars(crossing)])).rejects.toThrow(/Connection terminated/);
    for (const batch of [[bars(crossing)], [execute(limitBuy("90"))], [bars(crossing), execute(limitBuy("90"))]]) {
      const err = await engine.onBatch(batch).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HandlerUnavailableError);
      expect(isRetriable(err)).toBe(true);
    }
    expect(engine.isStale()).toBe(true);
    expect(await fillsOf(resting.orderId)).toEqual([]);
    expect(await statusOf(resting.orderId)).toBe("resting");
    expect((await client.query("SELECT open_time::text AS t FROM te_last_bar WHERE symbol = $1", [SYMBOL])).rows[0].t).toBe(String(t0));

    state.readsDown = false;
    await engine.onBatch([bars(crossing)]);
    expect(engine.isStale()).toBe(false);
    expect(await fillsOf(resting.orderId)).toEqual([`${resting.orderId}:1`]);
    await expectBookMatchesDatabase(engine);
  }, 120_000);
});
