/**
 * order-management's `GET /` (a trader's orders, newest first) on real PostgreSQL (found by session
 * 47's hunt):
 * - it answered the latest `limit` orders (at most 500) with no way to the older ones, and in no fixed
 *   order among orders of one instant (a group-committed batch shares its transaction's now()). Now
 *   it answers pages: `nextBefore` (null on the last page), sent back as `before`, in
 *   (created_at, order_id) order, so walking the pages answers every order once;
 * - `?status=` read the trader's whole history to find the orders of that status (a trader with
 *   30,000 filled orders asking for the expired ones read all 30,000 on every request). Now each page
 *   is read from an index in its order, with or without a status (migration 0466).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { pg } from "../harness";
import { useServers } from "../harness/shared";
import { migrateAll } from "../helpers/schemas";
import { createService, type Queryable, type Service } from "../../services/src/kit";
import orderManagement from "../../services/src/services/order-management";
import { listOrders } from "../../services/src/services/order-management/data";

const srv = useServers("postgres", "redis", "kafka", "clickhouse");
let pool: InstanceType<typeof pg.Pool>;
let om: Service;
const HISTORY = 30_000;
/** A trader with a long history of filled orders, inserted directly. */
const veteran = randomUUID();

beforeAll(async () => {
  pool = await migrateAll(srv.env);
  om = await createService(orderManagement, { env: { ...srv.env, LOG_LEVEL: "silent", OM_CONSUMER_GROUP: `om-${randomUUID()}` }, defaultMetrics: false });
  // The veteran's orders, and as many of 3,000 other users.
  await pool.query(
    `INSERT INTO om_orders (order_id, user_id, client_order_id, request_hash, symbol, side, type, quantity, status, filled_quantity, created_at)
     SELECT gen_random_uuid(), CASE WHEN g % 2 = 0 THEN $1 ELSE 'other-' || (g % 3000) END, 'c', 'h', 'BTCUSDT', 'buy', 'market', 1, 'filled', 1,
            now() - make_interval(secs => g)
       FROM generate_series(1, $2::int) AS g`,
    [veteran, 2 * HISTORY],
  );
  await pool.query("ANALYZE om_orders");
}, 600_000);
afterAll(async () => {
  await om?.close();
  await pool?.end();
});

const as = (userId: string) => ({ "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" });
async function get(url: string, userId: string) {
  const r = await om.app.inject({ method: "GET", url, headers: as(userId) });
  return { status: r.statusCode, body: r.json() };
}
const submit = (userId: string, quantity: string) =>
  om.app.inject({ method: "POST", url: "/", headers: as(userId), payload: { symbol: "BTCUSDT", side: "buy", type: "market", quantity } });

/** Every page of `url` (which has a `?`), following nextBefore; the pages' sizes too. */
async function walk(url: string, userId: string) {
  const all: Array<{ orderId: string; createdAt: string }> = [];
  const sizes: number[] = [];
  let before: string | null = null;
  for (let i = 0; i < 50; i++) {
    const r = await get(before === null ? url : `${url}&before=${before}`, userId);
    expect(r.status).toBe(200);
    expect(r.body).toHaveProperty("nextBefore");
    all.push(...r.body.orders);
    sizes.push(r.body.orders.length);
    before = r.body.nextBefore;
    if (before === null) return { all, sizes };
  }
  throw new Error("more than 50 pages");
}

/** The statement `read` sends, run under EXPLAIN ANALYZE: the rows its plan's leaves read (kept and filtered out). */
async function rowsRead(read: (db: Queryable) => Promise<unknown>): Promise<number> {
  const sent: Array<[string, unknown[]]> = [];
  await read({ query: (text, values) => (sent.push([text, values ?? []]), pool.query(text, values)) } as Queryable);
  const [[text, values]] = sent;
  const { rows } = await pool.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
  type PlanNode = { "Actual Rows": number; "Actual Loops": number; "Rows Removed by Filter"?: number; Plans?: PlanNode[] };
  const leaves = (n: PlanNode): PlanNode[] => (n.Plans?.length ? n.Plans.flatMap(leaves) : [n]);
  return leaves(rows[0]["QUERY PLAN"][0].Plan).reduce((sum, n) => sum + (n["Actual Rows"] + (n["Rows Removed by Filter"] ?? 0)) * n["Actual Loops"], 0);
}

describe("a trader's orders in pages", () => {
  it("walks every order once, newest first, orders of one instant included; nextBefore null on the last page", async () => {
    const trader = randomUUID();
    // 12 at once (group-committed: several share a created_at), then 5 one after the other.
    await Promise.all(Array.from({ length: 12 }, (_, i) => submit(trader, `${i + 1}`)));
    for (let i = 0; i < 5; i++) await submit(trader, `0.${i + 1}`);
    const whole = await get("/?limit=500", trader);
    expect(whole.body.orders).toHaveLength(17);
    expect(whole.body.nextBefore).toBeNull();
    const { all, sizes } = await walk("/?limit=5", trader);
    expect(sizes).toEqual([5, 5, 5, 2]);
    expect(all).toEqual(whole.body.orders);
    expect(new Set(all.map((o) => o.orderId)).size).toBe(17);
    // Newest first, ties by order id (descending).
    const key = (o: { orderId: string; createdAt: string }) => `${o.createdAt} ${o.orderId}`;
    expect(all.map(key)).toEqual(all.map(key).sort().reverse());
    // A page that ends exactly at the last order says so.
    const exact = await get("/?limit=17", trader);
    expect([exact.body.orders.length, exact.body.nextBefore]).toEqual([17, null]);
    // With a status: the same walk over the orders of that status.
    const accepted = await walk("/?limit=4&status=accepted", trader);
    expect(accepted.all).toEqual(whole.body.orders.filter((o: { status: string }) => o.status === "accepted"));
  });

  it("without a limit, the first 100 as before, and nextBefore leads to the rest", async () => {
    const first = await get("/", veteran);
    expect(first.body.orders).toHaveLength(100);
    const second = await get(`/?before=${first.body.nextBefore}`, veteran);
    expect(second.body.orders).toHaveLength(100);
    expect(Date.parse(second.body.orders[0].createdAt)).toBeLessThan(Date.parse(first.body.orders[99].createdAt));
  });

  it("a before that is not one of the caller's orders is a 400 naming before", async () => {
    const trader = randomUUID();
    const other = randomUUID();
    const theirs = (await submit(other, "1")).json().orderId;
    await submit(trader, "1");
    for (const before of [theirs, randomUUID(), "not-an-id", "%00", "1' OR '1'='1"]) {
      const r = await get(`/?before=${encodeURIComponent(before)}`, trader);
      expect([r.status, r.body.error?.field], before).toEqual([400, "before"]);
    }
  });
});

describe("a page reads what it answers", () => {
  it("a status with no orders among 30,000 of the trader's reads nothing like the history", async () => {
    const expired = await listOrders(pool, veteran, { status: "expired", idempotencyKey: null, before: null }, 100);
    expect(expired).toEqual([]);
    expect(await rowsRead((db) => listOrders(db, veteran, { status: "expired", idempotencyKey: null, before: null }, 100))).toBeLessThanOrEqual(10);
  });

  it("a page deep in the history reads its page", async () => {
    const [deep] = (await pool.query("SELECT order_id FROM om_orders WHERE user_id = $1 ORDER BY created_at DESC, order_id DESC OFFSET 20000 LIMIT 1", [veteran])).rows;
    const page = await listOrders(pool, veteran, { status: null, idempotencyKey: null, before: deep.order_id }, 100);
    expect(page).toHaveLength(100);
    expect(await rowsRead((db) => listOrders(db, veteran, { status: null, idempotencyKey: null, before: deep.order_id }, 100))).toBeLessThanOrEqual(250);
    expect(await rowsRead((db) => listOrders(db, veteran, { status: "filled", idempotencyKey: null, before: deep.order_id }, 100))).toBeLessThanOrEqual(250);
  });
});
