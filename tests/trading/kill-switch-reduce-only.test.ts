/**
 * The kill switch's reduce_only at the trading-engine (real PostgreSQL and Redis; the engine driven
 * batch by batch, no order-management sweep; the state written by risk-analyzer's own KillSwitch):
 * once the change has committed, no engine batch fills an order that would not shrink its owner's
 * position in the symbol (the engine's own position, te_positions, moved by each fill in order):
 *   - a resting buy against a long is passed over by a crossing bar, a resting sell that shrinks it fills;
 *   - several of a user's sells on one bar fill only while they bring the position at most to flat;
 *     a sell bigger than the position (a flip) does not fill at all, resting or arriving (held whole);
 *   - an arriving order and a bar in one batch are weighed in the order they fill;
 *   - global reduce_only: every user's growing orders are held or passed over;
 *   - lifted, the held orders execute as on arrival and the passed-over ones fill on the next bar;
 *     a held order's cancel is confirmed for its whole quantity;
 *   - no reduce_only scope covering the batch: no statement more than before (the statements counted).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "../harness";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import type { Identity } from "../../services/src/kit";
import { migratedKitPostgres } from "../helpers/schemas";
import { KillSwitch, type Scope } from "../../services/src/services/risk-analyzer/kill-switch";
import type { TradingEngine } from "../../services/src/services/trading-engine/engine";
import { testEngine } from "../helpers/engine";
import { engineRecords, recordingStatements } from "../helpers/engine-records";
import type { EngineCommand } from "../../services/src/services/trading-engine/messages";
import type { TradingState } from "../../services/src/trading/tradingState";
import type { Bar, OrderRequest } from "../../services/src/trading/types";
import { STRICT_SCOPES } from "../../services/src/services/trading-engine/data";

const srv = useServers("postgres", "redis");
const log = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Parameters<typeof createPostgres>[1];
const ADMIN: Identity = { userId: randomUUID(), role: "admin", authMethod: "jwt" };
let client: PostgresClient;
let redis: InstanceType<typeof Redis>;
let killSwitch: KillSwitch;
let engine: TradingEngine;

let minute = 0;
/** The next bar of `symbol` (open times only grow), from `low` to `high`, closing at `close`. */
const barOf = (symbol: string, close: string, low = close, high = close): Bar => {
  const openTime = Date.UTC(2026, 6, 1) + minute++ * 60_000;
  return { symbol, interval: "1m", openTime, closeTime: openTime + 59_999, open: close, high, low, close, volume: "1000" };
};
/** A bar crossing every limit between 97 and 103 (buys at 98, sells at 102). */
const crossing = (symbol: string) => barOf(symbol, "100", "97", "103");
const order = (symbol: string, userId: string, side: "buy" | "sell", quantity: string, limitPrice?: string): OrderRequest => ({
  orderId: randomUUID(), userId, symbol, side, quantity, ...(limitPrice ? { type: "limit", limitPrice } : { type: "market" }),
});
const execute = (...orders: OrderRequest[]): EngineCommand[] => orders.map((o) => ({ kind: "execute", order: o }));
const bars = (...b: Bar[]): EngineCommand => ({ kind: "bars", bars: b });

/** The engine's position (te_positions), "0" when the user never filled in the symbol. */
const positionOf = async (userId: string, symbol: string) =>
  (await client.query<{ q: string }>("SELECT quantity::text AS q FROM te_positions WHERE user_id = $1 AND symbol = $2", [userId, symbol])).rows[0]?.q ?? "0";

const { fillsOf, statusOf, eventsOf, newUser } = engineRecords(() => client);
const set = (scope: Scope, to: TradingState) => killSwitch.change(scope, to, "test of the engine's reduce_only", ADMIN);
const user = (userId: string): Scope => ({ kind: "user", userId });

/** A symbol of one test alone, its last price 100. */
async function freshSymbol(): Promise<string> {
  const symbol = `R${randomBytes(4).toString("hex").toUpperCase()}USDT`;
  await engine.onBatch([bars(barOf(symbol, "100"))]);
  return symbol;
}
/** A new user long `quantity` in `symbol` (a market buy filled while active). */
async function longUser(symbol: string, quantity: string): Promise<string> {
  const id = await newUser();
  await engine.onBatch(execute(order(symbol, id, "buy", quantity)));
  expect(Number(await positionOf(id, symbol))).toBe(Number(quantity));
  return id;
}

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log, 6);
  redis = new Redis(srv.env.DRAGONFLY_URL);
  killSwitch = new KillSwitch(client, () => redis, log as unknown as ConstructorParameters<typeof KillSwitch>[2]);
  engine = testEngine({ pg: client, log });
  await engine.load();
}, 300_000);

afterAll(async () => {
  redis?.disconnect();
  await client?.close();
});

describe("trading-engine: under reduce_only only fills that shrink the position", () => {
  it("a resting buy against a long is passed over by a crossing bar; a resting sell that shrinks it fills", async () => {
    const s = await freshSymbol();
    const owner = await longUser(s, "2");
    const [grow, shrink] = [order(s, owner, "buy", "1", "98"), order(s, owner, "sell", "1", "102")];
    await engine.onBatch(execute(grow, shrink));
    expect([await statusOf(grow.orderId), await statusOf(shrink.orderId)]).toEqual(["resting", "resting"]);

    await set(user(owner), "reduce_only");
    await engine.onBatch([bars(crossing(s))]);
    expect(await fillsOf(grow.orderId)).toEqual([]);
    expect(await statusOf(grow.orderId)).toBe("resting");
    expect(await fillsOf(shrink.orderId)).toEqual([`${shrink.orderId}:1`]);
    expect(Number(await positionOf(owner, s))).toBe(1);

    await set(user(owner), "active");
    await engine.onBatch([bars(crossing(s))]);
    expect(await fillsOf(grow.orderId)).toEqual([`${grow.orderId}:1`]);
    expect(Number(await positionOf(owner, s))).toBe(2);
  });

  it("several sells on one bar fill while they bring the position at most to flat; a sell bigger than the position fills nothing, resting or arriving", async () => {
    const s = await freshSymbol();
    const owner = await longUser(s, "2");
    const [first, second, third] = [order(s, owner, "sell", "1", "102"), order(s, owner, "sell", "1", "102"), order(s, owner, "sell", "1", "102")];
    await engine.onBatch(execute(first, second, third));
    await set(user(owner), "reduce_only");
    await engine.onBatch([bars(crossing(s))]);
    expect(await fillsOf(first.orderId)).toHaveLength(1);
    expect(await fillsOf(second.orderId)).toHaveLength(1);
    expect(await fillsOf(third.orderId)).toEqual([]); // would take the position through zero
    expect(await statusOf(third.orderId)).toBe("resting");
    expect(Number(await positionOf(owner, s))).toBe(0);

    // A flip: long 1, a sell of 2 is not filled up to flat, it is held whole (resting: passed over; arriving: held).
    const flipper = await longUser(s, "1");
    await set(user(flipper), "reduce_only");
    const [restingFlip, arrivingFlip, toFlat] = [order(s, flipper, "sell", "2", "102"), order(s, flipper, "sell", "2"), order(s, flipper, "sell", "1")];
    await engine.onBatch(execute(restingFlip, arrivingFlip));
    await engine.onBatch([bars(crossing(s))]);
    expect(await fillsOf(restingFlip.orderId)).toEqual([]);
    expect(await statusOf(arrivingFlip.orderId)).toBe("held");
    expect(await eventsOf(arrivingFlip.orderId)).toEqual([]);
    expect(Number(await positionOf(flipper, s))).toBe(1);
    await engine.onBatch(execute(toFlat));
    expect(await fillsOf(toFlat.orderId)).toEqual([`${toFlat.orderId}:1`]);
    expect(Number(await positionOf(flipper, s))).toBe(0);

    // The sweep's cancel pulls the held order for its whole quantity.
    await engine.onBatch([{ kind: "cancel", order: arrivingFlip }]);
    expect(await eventsOf(arrivingFlip.orderId)).toEqual([{ type: "order.cancelled", remaining: "2" }]);
    for (const o of [third, restingFlip]) await engine.onBatch([{ kind: "cancel", order: o }]);
    await set(user(owner), "active");
    await set(user(flipper), "active");
  });

  it("an arriving sell and a bar in one batch are weighed in the order they fill: the second sell to pass flat is passed over", async () => {
    const s = await freshSymbol();
    const owner = await longUser(s, "1");
    const resting = order(s, owner, "sell", "1", "102");
    await engine.onBatch(execute(resting));
    await set(user(owner), "reduce_only");
    const market = order(s, owner, "sell", "1");
    await engine.onBatch([...execute(market), bars(crossing(s))]);
    expect(await fillsOf(market.orderId)).toEqual([`${market.orderId}:1`]);
    expect(await fillsOf(resting.orderId)).toEqual([]);
    expect(Number(await positionOf(owner, s))).toBe(0);
    await engine.onBatch([{ kind: "cancel", order: resting }]);
    await set(user(owner), "active");
  });

  it("global reduce_only: growing orders of every user are held or passed over, shrinking ones fill; lifted, the held ones execute as on arrival", async () => {
    const s = await freshSymbol();
    const [a, b] = [await longUser(s, "1"), await longUser(s, "1")];
    const restingBuy = order(s, a, "buy", "1", "98");
    await engine.onBatch(execute(restingBuy));
    await set({ kind: "global" }, "reduce_only");
    try {
      const [flatUser, arrivingBuy, arrivingSell] = [await newUser(), order(s, b, "buy", "1"), order(s, b, "sell", "1")];
      const fromFlat = order(s, flatUser, "sell", "1"); // flat: any order would open a position
      await engine.onBatch([...execute(arrivingBuy, fromFlat, arrivingSell), bars(crossing(s))]);
      expect(await fillsOf(restingBuy.orderId)).toEqual([]);
      expect([await statusOf(arrivingBuy.orderId), await statusOf(fromFlat.orderId)]).toEqual(["held", "held"]);
      expect(await fillsOf(arrivingSell.orderId)).toEqual([`${arrivingSell.orderId}:1`]);
      expect([...engine.heldOf()].map((o) => o.orderId)).toEqual([arrivingBuy.orderId, fromFlat.orderId]);

      await set({ kind: "global" }, "active");
      await engine.onBatch([bars(crossing(s))]);
      for (const o of [restingBuy, arrivingBuy, fromFlat]) expect(await fillsOf(o.orderId)).toEqual([`${o.orderId}:1`]);
      expect([...engine.heldOf()]).toEqual([]);
      expect([Number(await positionOf(a, s)), Number(await positionOf(b, s)), Number(await positionOf(flatUser, s))]).toEqual([2, 1, -1]);
    } finally {
      await set({ kind: "global" }, "active");
    }
  });

  it("two sells in one batch that together pass flat: the first fills, the second is held, and weighed again at the next batch stays held", async () => {
    const s = await freshSymbol();
    const owner = await longUser(s, "2");
    await set(user(owner), "reduce_only");
    const [first, second] = [order(s, owner, "sell", "2"), order(s, owner, "sell", "2")];
    // One batch: the first takes the position to flat; the second would flip it and is held.
    await engine.onBatch(execute(first, second));
    expect(await fillsOf(first.orderId)).toEqual([`${first.orderId}:1`]);
    expect(await statusOf(second.orderId)).toBe("held");
    // Every batch weighs the held orders again (oldest first): flat, a sell still opens a short.
    await engine.onBatch([bars(barOf(s, "100"))]);
    expect(await statusOf(second.orderId)).toBe("held");
    await engine.onBatch([{ kind: "cancel", order: second }]);
    await set(user(owner), "active");
  });

  it("no reduce_only scope covering the batch: no statement more; one covering it: one statement more, the positions read", async () => {
    const { pg: counting, texts } = recordingStatements(client);
    const s = await freshSymbol();
    const [someoneElse, owner] = [await longUser(s, "1"), await longUser(s, "1")];
    const counted = testEngine({ pg: counting, log });
    await counted.load();
    await set(user(someoneElse), "reduce_only");
    try {
      const sell = order(s, owner, "sell", "1");
      await counted.onBatch(execute(sell));
      expect(await fillsOf(sell.orderId)).toEqual([`${sell.orderId}:1`]);
      expect(texts).toHaveLength(2); // BEGIN with the lock, the scopes and the known orders; the order, its fill and the outbox with COMMIT
      expect(texts[0]).toContain(`EXECUTE ${STRICT_SCOPES.name}`);

      texts.length = 0;
      const reducing = order(s, someoneElse, "sell", "1");
      await counted.onBatch(execute(reducing));
      expect(await fillsOf(reducing.orderId)).toEqual([`${reducing.orderId}:1`]);
      expect(texts).toHaveLength(3);
      expect(texts[1]).toContain("te_positions");
    } finally {
      await set(user(someoneElse), "active");
    }
    await engine.load(); // the shared engine catches up with what the counted one did
  });
});
