/**
 * The order path's guarantees with real PostgreSQL, Redis and a private Kafka (the topics are
 * fixed names; a private broker keeps them apart from the other test files): two order-management
 * replicas and the trading-engine in-process.
 *   - validation: non-positive / malformed prices and quantities, unknown statuses are 4xx naming the field;
 *   - an idempotent replay answers from the stored order and runs nothing else; concurrent requests
 *     with one key (batched together, and on two replicas) make one order, another body gets 409;
 *   - per-user serialization: concurrent orders on two replicas never breach the position limit;
 *   - the kill switch: halted rejects every order, reduce_only anything that grows the position;
 *   - poison messages are set aside in consumer_dead_letters and the engine keeps consuming;
 *   - cancel is pending until the engine confirms; a racing partial fill is kept, the cancel covers the rest.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { kafkajs, pg, Redis } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { startOrderPathRig, type OrderPathRig } from "../helpers/order-path-rig";
import orderManagement from "../../services/src/services/order-management";
import tradingEngine from "../../services/src/services/trading-engine";
import { TOPICS } from "../../services/src/trading/events";
import { TRADING_STATE_KEYS } from "../../services/src/trading/tradingState";
import { parseSamples } from "../helpers/promql";
import { http, waitUntil } from "./e2e-helpers";

const srv = useServers("postgres", "redis");
const SYMBOL = "BTCUSDT";
let rig: OrderPathRig;
let env: Record<string, string>;
let pool: InstanceType<typeof pg.Pool>;
let redis: InstanceType<typeof Redis>;
let producer: ReturnType<InstanceType<typeof kafkajs.Kafka>["producer"]>;
const services: Service<any>[] = [];
let omA: string;
let omB: string;
let engine: { service: Service<any>; url: string } | undefined;

const as = (userId: string) => ({ "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" });
const submit = (om: string, userId: string, body: Record<string, unknown>, key?: string) =>
  http("POST", `${om}/`, { body, headers: { ...as(userId), ...(key ? { "idempotency-key": key } : {}) } });
const market = (side: "buy" | "sell", quantity: string) => ({ symbol: SYMBOL, side, type: "market", quantity });
const orderOf = async (userId: string, id: string) => (await http("GET", `${omA}/${id}`, { headers: as(userId) })).body;
/** Bound of every wait: generous, it only guards against a hang on a loaded machine. */
const WAIT_MS = 240_000;
const waitStatus = (userId: string, id: string, status: string) =>
  waitUntil(`order ${id} ${status}`, async () => {
    const o = await orderOf(userId, id);
    return o.status === status ? o : undefined;
  }, WAIT_MS);

async function startEngine(): Promise<void> {
  const service = await createService(tradingEngine, { env, defaultMetrics: false });
  engine = { service, url: await service.listen({ port: 0, host: "127.0.0.1" }) };
}
async function stopEngine(): Promise<void> {
  await engine?.service.close();
  engine = undefined;
}
/** A closed 1m bar at `close` (the engine's price for market orders). */
const bar = (openTime: number, close: string, low = close, high = close) => ({ symbol: SYMBOL, interval: "1m", openTime, closeTime: openTime + 59_999, open: close, high, low, close, volume: "1000" });

beforeAll(async () => {
  rig = await startOrderPathRig(srv.env, { symbol: SYMBOL, lastPrice: "100", env: { POSTGRES_POOL_MAX: "8", RISK_MAX_POSITION: "5" } });
  ({ env, pool, redis, producer } = rig);
  for (const _ of [0, 1]) {
    const s = await createService(orderManagement, { env, defaultMetrics: false });
    services.push(s);
  }
  [omA, omB] = await Promise.all(services.map((s) => s.listen({ port: 0, host: "127.0.0.1" })));
}, 300_000);

afterAll(async () => {
  await stopEngine().catch(() => undefined);
  for (const s of services) await s.close().catch(() => undefined);
  await rig?.stop();
}, 60_000);

describe("order validation", () => {
  it("answers 400 naming the field for any non-positive, malformed or over-precise number", async () => {
    const user = randomUUID();
    const limit = (limitPrice: unknown) => submit(omA, user, { symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice });
    for (const p of ["0", "0.0", "0.00000000", "-1", "1e3", "Infinity", "NaN", "1.123456789", "", " 100", "0x64", "１００", 100, null, "9999999999999"]) {
      const r = await limit(p);
      expect(r.status, `limitPrice ${JSON.stringify(p)}`).toBe(400);
      expect(r.body.error.field, `limitPrice ${JSON.stringify(p)}`).toBe("limitPrice");
    }
    for (const q of ["0", "-0.5", "abc", "1.000000001"]) {
      const r = await submit(omA, user, market("buy", q));
      expect(r.status).toBe(400);
      expect(r.body.error.field).toBe("quantity");
    }
    expect((await pool.query("SELECT count(*)::int AS n FROM om_orders WHERE user_id = $1", [user])).rows[0].n).toBe(0);
  }, 600_000);
  it("answers 400 naming `status` for a status that does not exist", async () => {
    const user = randomUUID();
    for (const s of ["%00", "bogus", "FILLED", "filled%27%20OR%201=1", "%ZZ"]) {
      const r = await http("GET", `${omA}/?status=${s}`, { headers: as(user) });
      expect(r.status, s).toBe(400);
      expect(r.body.error.field, s).toBe("status");
    }
    expect((await http("GET", `${omA}/?status=pending_cancel`, { headers: as(user) })).body).toEqual({ orders: [], nextBefore: null });
  }, 600_000);
});

describe("idempotent replay", () => {
  it("answers from the stored order and runs neither the risk check nor the insert again", async () => {
    const user = randomUUID();
    const first = await submit(omA, user, market("buy", "1"), "replay-1");
    expect(first.status).toBe(201);
    const again = await submit(omA, user, market("buy", "1"), "replay-1");
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replay")).toBe("true");
    expect(again.body.orderId).toBe(first.body.orderId);
    // A later order on the same instance goes through the whole path; the replay must not have.
    expect((await submit(omA, user, market("sell", "1"))).status).toBe(201);
    const metrics = await (await fetch(`${omA}/metrics`)).text();
    expect(metrics).toMatch(/om_orders_submitted_total\{outcome="replayed"[^}]*\} 1\n/);
    expect((await pool.query("SELECT count(*)::int AS n FROM om_orders WHERE user_id = $1", [user])).rows[0].n).toBe(2);
  }, 600_000);
});

describe("idempotent replay racing", () => {
  it("concurrent submissions of one Idempotency-Key on two replicas make one order; the other body is 409", async () => {
    const user = randomUUID();
    await Promise.all([omA, omB].map((om) => http("GET", `${om}/?limit=1`, { headers: as(user) })));
    // Same key, two bodies, all at once on both replicas: batched together and across replicas.
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => submit(i % 2 ? omB : omA, user, market(i % 3 ? "buy" : "sell", "1"), "race-1")));
    const stored = await pool.query("SELECT order_id, side FROM om_orders WHERE user_id = $1", [user]);
    expect(stored.rows).toHaveLength(1);
    const winner = stored.rows[0];
    const sameBody = results.filter((_, i) => (i % 3 ? "buy" : "sell") === winner.side);
    expect(sameBody.filter((r) => r.status === 201)).toHaveLength(1);
    expect(sameBody.filter((r) => r.status === 200).length).toBe(sameBody.length - 1);
    expect(sameBody.every((r) => r.body.orderId === winner.order_id)).toBe(true);
    const otherBody = results.filter((_, i) => (i % 3 ? "buy" : "sell") !== winner.side);
    expect(otherBody.map((r) => r.status)).toEqual(otherBody.map(() => 409));
    expect(otherBody[0].body.error.code).toBe("IDEMPOTENCY_KEY_REUSED");
    // The 409 names the header at fault, as every client error names its field (session 47: it named none).
    expect(otherBody.map((r) => r.body.error.field)).toEqual(otherBody.map(() => "idempotency-key"));
  }, 600_000);
});

describe("pre-trade risk across replicas", () => {
  it("never breaches the position limit under concurrent orders on two order-management instances", async () => {
    const user = randomUUID();
    // 30 buys of 1 against a limit of 5, half on each replica, all at once. Nothing fills (the
    // engine is not running yet), so the open orders are the exposure the check must count.
    // Both replicas' pools hold connections first: the kit bounds opening one at 5 s, which a loaded
    // machine can exceed, and that is not what this test is about.
    await Promise.all([omA, omB, omA, omB].map((om) => http("GET", `${om}/?limit=1`, { headers: as(randomUUID()) })));
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => submit(i % 2 ? omB : omA, user, market("buy", "1"))));
    expect(results.every((r) => r.status === 201)).toBe(true);
    const accepted = results.filter((r) => r.body.status === "accepted");
    expect(accepted).toHaveLength(5);
    expect(new Set(results.filter((r) => r.body.status === "rejected").map((r) => r.body.rejectReason))).toEqual(new Set(["POSITION_LIMIT_EXCEEDED"]));
    const open = await pool.query("SELECT coalesce(sum(quantity), 0)::text AS q FROM om_orders WHERE user_id = $1 AND status = 'accepted'", [user]);
    expect(open.rows[0].q).toBe("5");
  }, 600_000);

  it("a halted user cannot open a position; a global halt stops everyone", async () => {
    const user = randomUUID();
    await redis.set(TRADING_STATE_KEYS.user(user), "halted");
    for (const body of [market("buy", "1"), market("sell", "1"), { symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice: "100" }]) {
      const r = await submit(omB, user, body);
      expect(r.body).toMatchObject({ status: "rejected", rejectReason: "TRADING_HALTED" });
    }
    const other = randomUUID();
    await redis.set(TRADING_STATE_KEYS.global, "halted");
    expect((await submit(omA, other, market("buy", "1"))).body.rejectReason).toBe("TRADING_HALTED");
    await redis.set(TRADING_STATE_KEYS.global, "garbage"); // an unknown value reads as halted
    expect((await submit(omA, other, market("buy", "1"))).body.rejectReason).toBe("TRADING_HALTED");
    await redis.del(TRADING_STATE_KEYS.global);
    expect((await submit(omA, other, market("buy", "1"))).body.status).toBe("accepted");
    expect((await pool.query("SELECT count(*)::int AS n FROM om_orders WHERE user_id = $1 AND status <> 'rejected'", [user])).rows[0].n).toBe(0);
  }, 600_000);

  it("a halt recorded in PostgreSQL holds while Dragonfly has lost its copy (a restart, an old snapshot)", async () => {
    const user = randomUUID();
    await redis.del(TRADING_STATE_KEYS.user(user), TRADING_STATE_KEYS.global);
    await pool.query("INSERT INTO trading_states (scope, state) VALUES ($1, 'halted')", [`user:${user}`]);
    expect((await submit(omA, user, market("buy", "1"))).body.rejectReason).toBe("TRADING_HALTED");
    await pool.query("UPDATE trading_states SET state = 'reduce_only' WHERE scope = $1", [`user:${user}`]);
    expect((await submit(omB, user, market("buy", "1"))).body.rejectReason).toBe("REDUCE_ONLY");
    const other = randomUUID();
    await pool.query("INSERT INTO trading_states (scope, state) VALUES ('global', 'halted') ON CONFLICT (scope) DO UPDATE SET state = 'halted'");
    try {
      expect((await submit(omB, other, market("buy", "1"))).body.rejectReason).toBe("TRADING_HALTED");
    } finally {
      await pool.query("UPDATE trading_states SET state = 'active' WHERE scope = 'global'");
    }
    expect((await submit(omB, other, market("buy", "1"))).body.status).toBe("accepted");
  }, 600_000);
});

describe("trading-engine", () => {
  it("sets poison messages aside with the reason and keeps consuming", async () => {
    await startEngine();
    const t0 = Date.UTC(2026, 0, 1);
    const poison = [
      { topic: TOPICS.candles, value: "not json" },
      { topic: TOPICS.candles, value: JSON.stringify({ ...bar(t0, "100"), close: "0x64" }) },
      { topic: TOPICS.candles, value: JSON.stringify({ ...bar(t0, "100"), low: "101" }) },
      // Set aside by the topic's schema (trading/infra/topicSchemas.ts) before the engine sees them.
      { topic: TOPICS.orders, value: JSON.stringify({ eventId: "e1", type: "order.accepted", order: { orderId: "not-a-uuid", userId: "u", symbol: SYMBOL, side: "buy", type: "market", quantity: "1", status: "accepted" } }) },
      { topic: TOPICS.orders, value: JSON.stringify({ eventId: "e2", type: "order.accepted", order: { orderId: randomUUID(), userId: "u", symbol: SYMBOL, side: "buy", type: "market", quantity: " 1", status: "accepted" } }) },
      // Valid to the schema and the engine, refused by PostgreSQL (jsonb has no \u0000): set aside on the database's word.
      { topic: TOPICS.orders, value: JSON.stringify({ eventId: "e3", type: "order.accepted", order: { orderId: randomUUID(), clientOrderId: "a\u0000b", userId: "u", symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice: "50", status: "accepted" } }) },
    ];
    for (const p of poison) await producer.send({ topic: p.topic, messages: [{ key: SYMBOL, value: p.value }] });
    // Good messages after the poison on the same partitions still go through: a one-bar message (the
    // old format), then a batch (data-bridge's format) whose poison bars are refused (the message set aside as received): one
    // breaking the bar rules, one whose openTime its double does not carry (it was the whole batch).
    const t1 = t0 + 60_000;
    const tuple = (b: ReturnType<typeof bar>) => [b.openTime, b.closeTime, b.open, b.high, b.low, b.close, b.volume];
    const batch = { v: 2, symbol: SYMBOL, interval: "1m", bars: [[...tuple(bar(t0 + 30_000, "100")).slice(0, 5), "0x64", "1"], tuple(bar(t0 + 45_000, "100")), tuple(bar(t1, "100"))] };
    const batchText = JSON.stringify(batch).replace(`[${t0 + 45_000},`, `[${t0 + 45_000}.0000000000000000001,`);
    await producer.send({ topic: TOPICS.candles, messages: [{ key: SYMBOL, value: JSON.stringify(bar(t0, "100")) }] });
    await waitUntil("engine took the good bar", async () => (await http("GET", `${engine!.url}/last/${SYMBOL}`)).body.bar?.openTime === t0, WAIT_MS);
    await producer.send({ topic: TOPICS.candles, messages: [{ key: SYMBOL, value: batchText }] });
    await waitUntil("engine took the batch's good bar", async () => (await http("GET", `${engine!.url}/last/${SYMBOL}`)).body.bar?.openTime === t1, WAIT_MS);
    const rows = await waitUntil("seven dead letters", async () => {
      const r = await pool.query("SELECT topic, reason FROM consumer_dead_letters WHERE consumer_group = 'trading-engine' ORDER BY id");
      return r.rowCount === poison.length + 1 ? r.rows : undefined;
    }, WAIT_MS);
    const reasons = rows.map((r) => r.reason).join("\n");
    expect(reasons).toMatch(/not JSON/);
    // Candles are refused by the topic's bar rules (marketdata/barRules.ts) before the engine sees them.
    expect(reasons).toMatch(/market\.candles message: close: must be a decimal string/);
    expect(reasons).toMatch(/market\.candles message: low: must be <= open and close/);
    expect(reasons).toMatch(/market\.candles message: 2 of 3 bars refused .*bars\.0\.close: must be a decimal string.*bars\.1\.openTime: a number a double does not carry exactly/);
    expect(reasons).toMatch(/orderId is not a uuid/); // the engine executes only uuids; the topic schema accepts any id
    expect(reasons).toMatch(/order\.quantity: /);
    // Refused at decoding (messages.ts) before it is executed: PostgreSQL's jsonb cannot store it.
    expect(reasons).toMatch(/clientOrderId holds U\+0000 or an unpaired surrogate/);
    // Each one counted once in the engine's consumer_dead_letters_total (the MessagesSetAside alert), by topic.
    const counted = parseSamples(await (await fetch(`${engine!.url}/metrics`)).text(), "consumer_dead_letters_total");
    const perTopic = (topic: string) => counted.filter((c) => c.labels.consumer_group === "trading-engine" && c.labels.topic === topic).reduce((n, c) => n + c.value, 0);
    for (const topic of [TOPICS.candles, TOPICS.orders]) expect(perTopic(topic), topic).toBe(rows.filter((r) => r.topic === topic).length);
    expect(perTopic(TOPICS.candles) + perTopic(TOPICS.orders)).toBe(poison.length + 1);
  }, 600_000);

  it("a cancel is pending until the engine confirms it; a racing partial fill is kept, the cancel covers the rest", async () => {
    const user = randomUUID();
    const r = await submit(omA, user, { symbol: SYMBOL, side: "buy", type: "limit", quantity: "1", limitPrice: "99" });
    expect(r.body.status).toBe("accepted");
    const id = r.body.orderId;
    const book = async () => (await http("GET", `${engine!.url}/book`, { headers: as(user) })).body.resting as { orderId: string }[];
    await waitUntil("resting", async () => (await book()).some((o) => o.orderId === id), WAIT_MS);
    expect(await book()).toHaveLength(1);
    expect((await http("GET", `${engine!.url}/book`, { headers: as(randomUUID()) })).body.resting).toEqual([]);

    await stopEngine(); // the engine is busy elsewhere: the cancel request waits for it
    const c = await http("POST", `${omB}/${id}/cancel`, { headers: as(user) });
    expect(c.status).toBe(202);
    expect(c.body.status).toBe("pending_cancel");
    expect((await http("POST", `${omA}/${id}/cancel`, { headers: as(user) })).body.status).toBe("pending_cancel");
    // A fill that was already on its way lands while the cancel is pending (keyed as the engine keys executions: by user).
    const fill = { fillId: `${id}:race`, orderId: id, userId: user, symbol: SYMBOL, side: "buy", quantity: "0.4", price: "99", fee: "0.01", liquidity: "maker", ts: Date.now() };
    await producer.send({ topic: TOPICS.executions, messages: [{ key: user, value: JSON.stringify({ eventId: fill.fillId, type: "fill", fill }) }] });
    const racing = await waitUntil("racing fill applied", async () => {
      const o = await orderOf(user, id);
      return o.filledQuantity === "0.4" ? o : undefined;
    }, WAIT_MS);
    expect(racing.status).toBe("pending_cancel");
    await startEngine();
    const done = await waitStatus(user, id, "cancelled");
    expect(done.filledQuantity).toBe("0.4");
    expect(await book()).toEqual([]);
    const te = await pool.query("SELECT status FROM te_orders WHERE order_id = $1", [id]);
    expect(te.rows[0].status).toBe("cancelled");
  }, 600_000);

  it("reduce_only accepts only orders that shrink the position", async () => {
    const user = randomUUID();
    const buy = await submit(omA, user, market("buy", "2"));
    await producer.send({ topic: TOPICS.candles, messages: [{ key: SYMBOL, value: JSON.stringify(bar(Date.UTC(2026, 0, 1, 0, 5), "100")) }] });
    await waitStatus(user, buy.body.orderId, "filled");
    await redis.set(TRADING_STATE_KEYS.user(user), "reduce_only");
    expect((await submit(omA, user, market("buy", "0.1"))).body.rejectReason).toBe("REDUCE_ONLY");
    expect((await submit(omB, user, market("sell", "3"))).body.rejectReason).toBe("REDUCE_ONLY"); // would flip to short
    const sell = await submit(omB, user, market("sell", "1.5"));
    expect(sell.body.status).toBe("accepted");
    // The open sell counts: another 1 would take the position below zero once both fill.
    expect((await submit(omA, user, market("sell", "1"))).body.rejectReason).toBe("REDUCE_ONLY");
    const last = await submit(omA, user, market("sell", "0.5"));
    expect(last.body.status).toBe("accepted");
    // Both sells fill (the engine has a bar): waited for, so the figures below do not depend on how
    // fast the path is.
    await waitStatus(user, sell.body.orderId, "filled");
    await waitStatus(user, last.body.orderId, "filled");
    // The check read the position from om_positions, which the fills' trigger keeps equal to the
    // signed filled quantity of every order, for every user this file traded for.
    const drift = await pool.query(
      `SELECT o.user_id, o.symbol, o.q, p.quantity FROM
         (SELECT user_id, symbol, sum(CASE WHEN side = 'buy' THEN filled_quantity ELSE -filled_quantity END) AS q FROM om_orders GROUP BY 1, 2) o
         FULL JOIN om_positions p USING (user_id, symbol)
        WHERE coalesce(o.q, 0) <> coalesce(p.quantity, 0)`,
    );
    expect(drift.rows).toEqual([]);
    expect((await pool.query("SELECT quantity::float8 AS q FROM om_positions WHERE user_id = $1", [user])).rows).toEqual([{ q: 0 }]);
  }, 600_000);
});
