/**
 * trading-engine's `GET /book` (a trader's resting and held orders; an admin's, everyone's) on real
 * PostgreSQL and a private Kafka (found by session 47's hunt): it answered every order, with no
 * bound, and built a trader's answer by copying the whole book (every user's resting orders) and
 * filtering it, on the engine's event loop, the one that executes orders. A trader may rest orders
 * of a quantity as small as 0.00000001 up to the position limit: thousands of them, or millions,
 * each listed on every request. Now each list holds the oldest `limit` (1..1000, default 500) with
 * how many there are (`restingTotal`, `heldTotal`), and a trader's are read from the book's index of
 * owners (paperExchange.ts restingOf), not by walking every user's.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, pg } from "../harness";
import { useServersWith } from "../harness/shared";
import { ensureKafkaTopics, runPostgresMigrations } from "../../services/src/migrations";
import { createService, type Service } from "../../services/src/kit";
import tradingEngine from "../../services/src/services/trading-engine";
import { PaperExchange } from "../../services/src/trading/paperExchange";
import type { OrderRequest } from "../../services/src/trading/types";

const srv = useServersWith({ privateKafka: true }, "postgres", "kafka");
let pool: InstanceType<typeof pg.Pool>;
let engine: Service;
const trader = randomUUID();
const MINE = 1_500;
const OTHERS = 3_000;
const order = (userId: string, i: number): OrderRequest => ({
  orderId: randomUUID(), userId, symbol: i % 2 ? "BTCUSDT" : "ETHUSDT", side: "buy", type: "limit", quantity: "0.00000001", limitPrice: "1", timeInForce: "GTC",
});
const mine = Array.from({ length: MINE }, (_, i) => order(trader, i));
const held = [order(trader, 0), order(trader, 1)];

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: 2 });
  await runPostgresMigrations(pool);
  const admin = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  await ensureKafkaTopics(admin);
  await admin.disconnect();
  // The trader's orders interleaved with 3,000 of 1,000 other users, in submission (created_at) order.
  const others = Array.from({ length: OTHERS }, (_, i) => order(`other-${i % 1000}`, i));
  const all = mine.flatMap((o, i) => [o, others[2 * i], others[2 * i + 1]]);
  await pool.query(
    `INSERT INTO te_orders (order_id, payload, status, remaining, fill_seq, created_at)
     SELECT id, p, 'resting', 0.00000001, 0, now() - make_interval(secs => $3::int - n) FROM unnest($1::uuid[], $2::jsonb[]) WITH ORDINALITY AS x(id, p, n)`,
    [all.map((o) => o.orderId), all.map((o) => JSON.stringify(o)), all.length],
  );
  await pool.query(
    "INSERT INTO te_orders (order_id, payload, status, remaining, fill_seq) SELECT id, p, 'held', 0.00000001, 0 FROM unnest($1::uuid[], $2::jsonb[]) AS x(id, p)",
    [held.map((o) => o.orderId), held.map((o) => JSON.stringify(o))],
  );
  engine = await createService(tradingEngine, { env: { ...srv.env, LOG_LEVEL: "silent", TE_CONSUMER_GROUP: `te-${randomUUID()}` }, defaultMetrics: false });
}, 600_000);
afterAll(async () => {
  await engine?.close();
  await pool?.end();
});

async function book(userId: string, role: string, query = "") {
  const r = await engine.app.inject({ method: "GET", url: `/book${query}`, headers: { "x-user-id": userId, "x-user-role": role, "x-auth-method": "jwt" } });
  return { status: r.statusCode, body: r.json() };
}

describe("GET /book is bounded", () => {
  it("a trader's: the oldest 500 of their resting orders by default, and how many there are", async () => {
    const r = await book(trader, "trader");
    expect(r.status).toBe(200);
    expect(r.body.resting.map((o: { orderId: string }) => o.orderId)).toEqual(mine.slice(0, 500).map((o) => o.orderId));
    expect(r.body.restingTotal).toBe(MINE);
    expect(r.body.held.map((o: { orderId: string }) => o.orderId).sort()).toEqual(held.map((o) => o.orderId).sort());
    expect(r.body.heldTotal).toBe(2);
  });

  it("limit up to 1,000; another trader sees none of them", async () => {
    const r = await book(trader, "trader", "?limit=1000");
    expect([r.body.resting.length, r.body.restingTotal]).toEqual([1000, MINE]);
    const small = await book(trader, "trader", "?limit=1");
    expect([small.body.resting.length, small.body.held.length]).toEqual([1, 1]);
    for (const limit of ["0", "1001", "-1", "1.5", "abc"]) {
      const bad = await book(trader, "trader", `?limit=${limit}`);
      expect([bad.status, bad.body.error?.field], limit).toEqual([400, "limit"]);
    }
    const stranger = await book(randomUUID(), "trader");
    expect(stranger.body).toMatchObject({ resting: [], held: [], restingTotal: 0, heldTotal: 0 });
  });

  it("an admin's: every user's, counted, the oldest 500 listed", async () => {
    const r = await book(randomUUID(), "admin");
    expect([r.body.resting.length, r.body.restingTotal, r.body.heldTotal]).toEqual([500, MINE + OTHERS, 2]);
  });
});

describe("the paper exchange's index of owners", () => {
  it("follows the book: rests, fills, cancels and restores", () => {
    const ex = new PaperExchange();
    const a = randomUUID();
    const b = randomUUID();
    const ids = (userId?: string) => [...ex.restingOf(userId)].map((r) => r.order.orderId);
    const [a1, a2, b1] = [order(a, 1), order(a, 2), order(b, 1)].map((o) => ({ ...o, limitPrice: "100", quantity: "1", symbol: "BTCUSDT" }));
    for (const o of [a1, b1, a2]) expect(ex.submit(o).status).toBe("resting");
    expect([ids(a), ids(b), ids()]).toEqual([[a1.orderId, a2.orderId], [b1.orderId], [a1.orderId, b1.orderId, a2.orderId]]);
    ex.cancel(a1.orderId);
    expect(ids(a)).toEqual([a2.orderId]);
    // A bar through the limit fills them: they leave their owners' lists.
    ex.onBar({ symbol: "BTCUSDT", interval: "1m", openTime: 0, closeTime: 59_999, open: "99", high: "99", low: "98", close: "99", volume: "1000" });
    expect([ids(a), ids(b), ids()]).toEqual([[], [], []]);
    ex.restore({ order: a1, remaining: "1", fillSeq: 0 });
    ex.restore({ order: a1, remaining: "0.5", fillSeq: 1 });
    expect([...ex.restingOf(a)].map((r) => r.remaining)).toEqual(["0.5"]);
  });
});
