/**
 * The kill switch at the trading-engine (real PostgreSQL and Redis; the engine driven batch by batch,
 * no order-management sweep; the halts written by risk-analyzer's own KillSwitch): once the halt's
 * transaction has committed, no engine batch fills an order of the halted scope.
 *   - a halted user's resting limit is passed over by a crossing bar (another user's fills); the
 *     cancel the sweep would request confirms it; back to active, a still-open order fills;
 *   - a market order accepted before the halt and delivered after it is held (te_orders `held`: no
 *     fill, no event), and the cancel confirms its whole quantity; redelivered, nothing happens;
 *   - a held order whose halt is lifted executes once at the next batch, after a restart too;
 *   - a global halt: every user's resting and arriving orders, until it is lifted;
 *   - the halt waits for an engine batch in flight, and a batch that starts during a halt's
 *     transaction waits for its commit and then sees it (the advisory lock, seen in pg_locks);
 *   - the lock and the read travel with BEGIN: a market order's batch is two round trips (its last writes go with COMMIT).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "../harness";
import { useServers } from "../harness/shared";
import type { createPostgres, PostgresClient } from "../../services/src/kit/datastores/postgres";
import type { Identity } from "../../services/src/kit";
import { migratedKitPostgres } from "../helpers/schemas";
import { KillSwitch, type Scope } from "../../services/src/services/risk-analyzer/kill-switch";
import { lockScope, recordChange } from "../../services/src/services/risk-analyzer/kill-switch-data";
import type { TradingEngine } from "../../services/src/services/trading-engine/engine";
import { testEngine } from "../helpers/engine";
import { engineRecords, recordingStatements } from "../helpers/engine-records";
import type { EngineCommand } from "../../services/src/services/trading-engine/messages";
import { KILL_SWITCH_LOCK, type TradingState } from "../../services/src/trading/tradingState";
import type { Bar, OrderRequest } from "../../services/src/trading/types";
import { waitUntil } from "./e2e-helpers";
import { STRICT_SCOPES } from "../../services/src/services/trading-engine/data";

const srv = useServers("postgres", "redis");
const SYMBOL = `K${randomBytes(4).toString("hex").toUpperCase()}USDT`;
/** Bound of a wait for a lock wait to show (a guard against a hang, not a measured figure). */
const WAIT_MS = 30_000;
const log = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Parameters<typeof createPostgres>[1];
const ADMIN: Identity = { userId: randomUUID(), role: "admin", authMethod: "jwt" };
let client: PostgresClient;
let redis: InstanceType<typeof Redis>;
let killSwitch: KillSwitch;

/** The engine's client; `pauseNext` holds the next transaction after its BEGIN round trip until released. */
function pausing(real: PostgresClient) {
  const ctl: { next?: { entered: () => void; release: Promise<void> } } = {};
  const pg: PostgresClient = {
    ...real,
    transaction: (fn, opts) =>
      real.transaction(async (tx, begun, each, commitWith) => {
        const pause = ctl.next;
        ctl.next = undefined;
        if (pause) {
          pause.entered();
          await pause.release;
        }
        return fn(tx, begun, each, commitWith);
      }, opts),
  };
  const pauseNext = () => {
    let release!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    ctl.next = { entered, release: new Promise<void>((r) => (release = r)) };
    return { inside, release };
  };
  return { pg, pauseNext };
}

const engineOn = (pg: PostgresClient) =>
  testEngine({ pg, log });
let minute = 0;
/** The next bar (open times only grow), closing at `close` with `low` as its low. */
const nextBar = (close: string, low = close): Bar => {
  const openTime = Date.UTC(2026, 5, 1) + minute++ * 60_000;
  return { symbol: SYMBOL, interval: "1m", openTime, closeTime: openTime + 59_999, open: close, high: close, low, close, volume: "1000" };
};
const limitBuy = (userId: string, limitPrice: string): OrderRequest => ({ orderId: randomUUID(), userId, symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice });
const marketBuy = (userId: string): OrderRequest => ({ orderId: randomUUID(), userId, symbol: SYMBOL, side: "buy", type: "market", quantity: "1" });
const execute = (...orders: OrderRequest[]): EngineCommand[] => orders.map((order) => ({ kind: "execute", order }));
const cancel = (order: OrderRequest): EngineCommand => ({ kind: "cancel", order });
const bars = (...b: Bar[]): EngineCommand => ({ kind: "bars", bars: b });

/** Backends waiting for the kill switch's advisory lock (pg_locks: two-int keys are classid, objid, objsubid 2). */
const waitingForKillSwitchLock = async () =>
  Number(
    (
      await client.query<{ n: string }>("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2 AND NOT granted", [
        KILL_SWITCH_LOCK.space,
        KILL_SWITCH_LOCK.key,
      ])
    ).rows[0].n,
  );

const { fillsOf, statusOf, eventsOf, newUser } = engineRecords(() => client);
const set = (scope: Scope, to: TradingState) => killSwitch.change(scope, to, "test of the engine's kill switch", ADMIN);
const user = (userId: string): Scope => ({ kind: "user", userId });

let engine: TradingEngine;
let paused: ReturnType<typeof pausing>;

beforeAll(async () => {
  client = await migratedKitPostgres(srv.env.POSTGRES_URL, log, 6);
  redis = new Redis(srv.env.DRAGONFLY_URL);
  killSwitch = new KillSwitch(client, () => redis, log as unknown as ConstructorParameters<typeof KillSwitch>[2]);
  paused = pausing(client);
  engine = engineOn(paused.pg);
  await engine.load();
  await engine.onBatch([bars(nextBar("100"))]);
}, 300_000);

afterAll(async () => {
  redis?.disconnect();
  await client?.close();
});

describe("trading-engine: no fill for a halted scope once the halt has committed", () => {
  it("a halted user's resting limit is passed over by a crossing bar, the cancel confirms it; back to active, a still-open order fills", async () => {
    const [halted, other] = [await newUser(), await newUser()];
    const [cancelled, stillOpen, theirs] = [limitBuy(halted, "98"), limitBuy(halted, "98"), limitBuy(other, "98")];
    await engine.onBatch(execute(cancelled, stillOpen, theirs));
    expect(await statusOf(cancelled.orderId)).toBe("resting");

    await set(user(halted), "halted");
    await engine.onBatch([bars(nextBar("97.5", "97"))]); // crosses the three limits at 98
    expect(await fillsOf(theirs.orderId)).toEqual([`${theirs.orderId}:1`]);
    for (const o of [cancelled, stillOpen]) {
      expect(await fillsOf(o.orderId)).toEqual([]);
      expect(await statusOf(o.orderId)).toBe("resting");
    }
    expect([...engine.restingOf()].map((r) => r.order.orderId).sort()).toEqual([cancelled.orderId, stillOpen.orderId].sort());

    // The sweep's cancel request: pulled from the book, confirmed for the whole quantity.
    await engine.onBatch([cancel(cancelled)]);
    expect(await statusOf(cancelled.orderId)).toBe("cancelled");
    expect(await eventsOf(cancelled.orderId)).toEqual([{ type: "order.cancelled", remaining: "1" }]);

    await set(user(halted), "active");
    await engine.onBatch([bars(nextBar("97.5", "97"))]);
    expect(await fillsOf(stillOpen.orderId)).toEqual([`${stillOpen.orderId}:1`]);
    expect(await statusOf(stillOpen.orderId)).toBe("filled");
    expect(await fillsOf(cancelled.orderId)).toEqual([]);
  });

  it("a market order accepted before the halt and delivered after it is held: no fill, no event; the cancel confirms its whole quantity", async () => {
    const halted = await newUser();
    const order = marketBuy(halted);
    await set(user(halted), "halted");
    await engine.onBatch(execute(order));
    expect(await statusOf(order.orderId)).toBe("held");
    expect(await fillsOf(order.orderId)).toEqual([]);
    expect(await eventsOf(order.orderId)).toEqual([]);
    expect([...engine.heldOf()].map((o) => o.orderId)).toEqual([order.orderId]);

    await engine.onBatch([...execute(order), bars(nextBar("100"))]); // redelivered, and a bar
    expect(await statusOf(order.orderId)).toBe("held");
    expect(await eventsOf(order.orderId)).toEqual([]);

    await engine.onBatch([cancel(order)]);
    expect(await statusOf(order.orderId)).toBe("cancelled");
    expect(await eventsOf(order.orderId)).toEqual([{ type: "order.cancelled", remaining: "1" }]);
    expect([...engine.heldOf()]).toEqual([]);
    await set(user(halted), "active");
    await engine.onBatch([bars(nextBar("100")), ...execute(order)]);
    expect(await fillsOf(order.orderId)).toEqual([]);
  });

  it("a held order whose halt is lifted before any cancel executes once at the next batch, after a restart too", async () => {
    const owner = await newUser();
    const order = marketBuy(owner);
    await set(user(owner), "halted");
    await engine.onBatch(execute(order));
    expect(await statusOf(order.orderId)).toBe("held");

    const restarted = engineOn(client);
    await restarted.load();
    expect([...restarted.heldOf()].map((o) => o.orderId)).toEqual([order.orderId]);
    await restarted.onBatch([bars(nextBar("100"))]); // still halted: nothing
    expect(await statusOf(order.orderId)).toBe("held");

    await set(user(owner), "active");
    await restarted.onBatch([bars(nextBar("100"))]);
    expect(await statusOf(order.orderId)).toBe("filled");
    expect(await fillsOf(order.orderId)).toEqual([`${order.orderId}:1`]);
    await restarted.onBatch([bars(nextBar("100")), ...execute(order)]);
    expect(await eventsOf(order.orderId)).toEqual([{ type: "fill", remaining: null }]);
    expect([...restarted.heldOf()]).toEqual([]);
    await engine.load(); // the first engine catches up with what the restarted one did
  });

  it("a global halt: no user's resting or arriving order fills until it is lifted", async () => {
    const [a, b] = [await newUser(), await newUser()];
    const [restingA, restingB] = [limitBuy(a, "98"), limitBuy(b, "98")];
    await engine.onBatch(execute(restingA, restingB));
    await set({ kind: "global" }, "halted");
    const arriving = marketBuy(b);
    await engine.onBatch([...execute(arriving), bars(nextBar("97.5", "97"))]);
    for (const o of [restingA, restingB, arriving]) expect(await fillsOf(o.orderId)).toEqual([]);
    expect(await statusOf(arriving.orderId)).toBe("held");

    await set({ kind: "global" }, "active");
    await engine.onBatch([bars(nextBar("97.5", "97"))]);
    for (const o of [restingA, restingB, arriving]) expect(await fillsOf(o.orderId)).toEqual([`${o.orderId}:1`]);
  });

  it("the halt waits for an engine batch in flight; a batch started during a halt's transaction waits for its commit and sees it", async () => {
    const owner = await newUser();
    const [first, second] = [limitBuy(owner, "98"), limitBuy(owner, "98")];
    await engine.onBatch([bars(nextBar("100")), ...execute(first)]);
    expect(await statusOf(first.orderId)).toBe("resting");

    // A crossing bar's batch has read the state (active) and holds the lock shared: the halt waits.
    const pause = paused.pauseNext();
    const batch = engine.onBatch([bars(nextBar("97.5", "97"))]);
    await pause.inside;
    let haltDone = false;
    const halt = set(user(owner), "halted").then(() => (haltDone = true));
    try {
      await waitUntil("the halt waits for the kill switch's lock", async () => (await waitingForKillSwitchLock()) === 1, WAIT_MS, 20);
      expect(haltDone).toBe(false);
    } finally {
      pause.release();
    }
    await batch;
    await halt;
    expect(await fillsOf(first.orderId)).toEqual([`${first.orderId}:1`]); // decided before the halt, committed before it

    // The reverse: the halt's transaction holds the lock exclusively; a crossing bar's batch waits, then sees it.
    await set(user(owner), "active");
    await engine.onBatch([bars(nextBar("100")), ...execute(second)]);
    expect(await statusOf(second.orderId)).toBe("resting");
    const tx = await client.pool.connect();
    try {
      await tx.query("BEGIN");
      const from = await lockScope(tx, `user:${owner}`);
      await recordChange(tx, from, { scope: `user:${owner}`, userId: owner, to: "halted", reason: "halt in flight", changedBy: ADMIN.userId, authMethod: "jwt" });
      let batchDone = false;
      const waiting = engine.onBatch([bars(nextBar("97.5", "97"))]).then(() => (batchDone = true));
      try {
        await waitUntil("the batch waits for the kill switch's lock", async () => (await waitingForKillSwitchLock()) === 1, WAIT_MS, 20);
        expect(batchDone).toBe(false);
      } finally {
        await tx.query("COMMIT");
      }
      await waiting;
    } finally {
      tx.release();
    }
    expect(await fillsOf(second.orderId)).toEqual([]);
    expect(await statusOf(second.orderId)).toBe("resting");
    await set(user(owner), "active");
  }, 120_000);

  it("the lock and the halted scopes travel with BEGIN: a market order's batch is two round trips, a cancel's takes no lock", async () => {
    const { pg: counting, texts } = recordingStatements(client);
    const counted = engineOn(counting);
    await counted.load();
    const order = marketBuy(await newUser());
    await counted.onBatch(execute(order));
    expect(await fillsOf(order.orderId)).toEqual([`${order.orderId}:1`]);
    expect(texts).toHaveLength(2); // BEGIN with the lock, the halts and the known orders; the order, its fill and the outbox with COMMIT
    expect(texts[0]).toContain("pg_advisory_xact_lock_shared");
    expect(texts[0]).toContain(`EXECUTE ${STRICT_SCOPES.name}`);

    texts.length = 0;
    await counted.onBatch([cancel(order)]);
    expect(texts.join("\n")).not.toContain("pg_advisory");
    await engine.load();
  });
});
