/**
 * The cap on a user's open orders (RISK_MAX_OPEN_ORDERS) and the floor on an order's notional
 * (RISK_MIN_ORDER_NOTIONAL) on real servers: two order-management replicas and risk-analyzer on one
 * PostgreSQL and Redis. Before, nothing bounded how many orders one trader kept open (the rate window
 * bounds only the pace, maxPosition the summed quantity), so dust limit orders could grow the
 * engine's in-memory books without bound. The count is read under the user's advisory lock in the
 * submit's transaction, and a batch counts the orders before each one: parallel requests to two
 * replicas never leave the user above the cap. The read goes by om_orders_open (EXPLAIN).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg, Redis } from "../harness";
import { useServers } from "../harness/shared";
import { migrateAll } from "../helpers/schemas";
import { createService, type Service } from "../../services/src/kit";
import { prepareStatements } from "../../services/src/kit/datastores/postgres";
import orderManagement from "../../services/src/services/order-management";
import { applyExecutions } from "../../services/src/services/order-management/executions";
import riskAnalyzer from "../../services/src/services/risk-analyzer";
import { lastPriceKey, type ExecutionMsg } from "../../services/src/trading/events";
import { RISK_FACTS, riskFactsStatement } from "../../services/src/trading/infra/riskContext";

const CAP = 5;
const srv = useServers("postgres", "redis", "kafka", "clickhouse");
let pool: InstanceType<typeof pg.Pool>;
let om: Service[] = [];
let risk: Service;

beforeAll(async () => {
  pool = await migrateAll(srv.env);
  const redis = new Redis(srv.env.DRAGONFLY_URL);
  await redis.set(lastPriceKey("BTCUSDT"), "100");
  await redis.set(lastPriceKey("ETHUSDT"), "100");
  redis.disconnect();
  // No trading-engine: accepted orders stay open until this file applies the engine's outcome.
  const env = { ...srv.env, LOG_LEVEL: "silent", OM_CONSUMER_GROUP: `om-${randomUUID()}`, RISK_MAX_OPEN_ORDERS: String(CAP), RISK_MAX_ORDERS_PER_WINDOW: "100000" };
  risk = await createService(riskAnalyzer, { env, defaultMetrics: false });
  om = [await createService(orderManagement, { env, defaultMetrics: false }), await createService(orderManagement, { env, defaultMetrics: false })];
}, 600_000);
afterAll(async () => {
  for (const s of om) await s.close();
  await risk?.close();
  await pool?.end();
});

const as = (userId: string) => ({ "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" });
async function post(svc: Service, url: string, userId: string, body?: unknown) {
  const r = await svc.app.inject({ method: "POST", url, headers: as(userId), ...(body === undefined ? {} : { payload: body as object }) });
  return { status: r.statusCode, body: r.json() };
}
const resting = (symbol = "BTCUSDT", side: "buy" | "sell" = "buy") => ({ symbol, side, type: "limit", quantity: "0.01", limitPrice: "100" });
const openCount = async (userId: string) =>
  (await pool.query("SELECT count(*)::int AS n FROM om_orders WHERE user_id = $1 AND status IN ('accepted', 'partially_filled', 'pending_cancel')", [userId])).rows[0].n as number;
/** What order-management's consumer does with the engine's messages, in one transaction. */
async function engineSays(msgs: ExecutionMsg[]) {
  const c = await pool.connect();
  try {
    await c.query("BEGIN");
    await applyExecutions(c, msgs, om[0].app.log);
    await c.query("COMMIT");
  } finally {
    c.release();
  }
}

describe("a user's open orders are capped", () => {
  it("refuses the order past the cap, on POST /orders and POST /check alike, until a cancel or a fill frees a slot", async () => {
    const user = randomUUID();
    const ids: string[] = [];
    for (let i = 0; i < CAP; i++) {
      const r = await post(om[i % 2], "/", user, resting(i % 2 ? "ETHUSDT" : "BTCUSDT", i % 3 ? "buy" : "sell"));
      expect([r.status, r.body.status], `order ${i + 1}`).toEqual([201, "accepted"]);
      ids.push(r.body.orderId);
    }
    const message = `${CAP} open orders (max ${CAP}): cancel one, or wait for a fill, before placing another`;
    for (const body of [resting(), resting("ETHUSDT", "sell"), { symbol: "BTCUSDT", side: "sell", type: "market", quantity: "1" }]) {
      const checked = await post(risk, "/check", user, body);
      expect([checked.status, checked.body.ok, checked.body.reason, checked.body.message], JSON.stringify(body)).toEqual([200, false, "OPEN_ORDERS_EXCEEDED", message]);
      expect([checked.body.context.openOrders, checked.body.limits.maxOpenOrders]).toEqual([CAP, CAP]);
      const placed = await post(om[1], "/", user, body);
      expect([placed.status, placed.body.status, placed.body.rejectReason, placed.body.rejectMessage], JSON.stringify(body)).toEqual([201, "rejected", "OPEN_ORDERS_EXCEEDED", message]);
    }
    expect(await openCount(user)).toBe(CAP);

    // A cancel requested is still open (a fill can win the race): no slot yet.
    expect((await post(om[0], `/${ids[0]}/cancel`, user)).status).toBe(202);
    expect((await post(om[0], "/", user, resting())).body.rejectReason).toBe("OPEN_ORDERS_EXCEEDED");
    // The engine confirms the cancel: one slot, taken by the next order; the one after is refused.
    await engineSays([{ eventId: `${ids[0]}:c`, type: "order.cancelled", orderId: ids[0], userId: user, symbol: "BTCUSDT", remaining: "0.01", reason: "user", ts: Date.now() }]);
    expect((await post(risk, "/check", user, resting())).body.ok).toBe(true);
    expect((await post(om[1], "/", user, resting())).body.status).toBe("accepted");
    expect((await post(om[0], "/", user, resting())).body.rejectReason).toBe("OPEN_ORDERS_EXCEEDED");
    // A full fill frees a slot too; a partial fill leaves the order open.
    const fill = (orderId: string, n: number, quantity: string): ExecutionMsg => ({
      eventId: `${orderId}:${n}`, type: "fill",
      fill: { fillId: `${orderId}:${n}`, orderId, userId: user, symbol: "ETHUSDT", side: "buy", quantity, price: "100", fee: "0.001", liquidity: "maker", ts: Date.now() },
    });
    await engineSays([fill(ids[1], 1, "0.005")]);
    expect((await post(om[0], "/", user, resting())).body.rejectReason).toBe("OPEN_ORDERS_EXCEEDED");
    await engineSays([fill(ids[1], 2, "0.005")]);
    expect((await post(om[0], "/", user, resting())).body.status).toBe("accepted");
    expect(await openCount(user)).toBe(CAP);
  });

  it("never lets parallel submissions to two replicas, batched or not, pass the cap", async () => {
    for (const round of [0, 1]) {
      const user = randomUUID();
      // Round 1 starts with two open orders.
      for (let i = 0; i < 2 * round; i++) expect((await post(om[0], "/", user, resting())).body.status).toBe("accepted");
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => post(om[i % 2], "/", user, resting(i % 3 ? "BTCUSDT" : "ETHUSDT", i % 2 ? "buy" : "sell"))));
      expect(answers.every((a) => a.status === 201)).toBe(true);
      const accepted = answers.filter((a) => a.body.status === "accepted").length;
      expect(accepted, `round ${round}`).toBe(CAP - 2 * round);
      expect(answers.filter((a) => a.body.rejectReason === "OPEN_ORDERS_EXCEEDED").length).toBe(30 - accepted);
      expect(await openCount(user)).toBe(CAP);
    }
  });

  it("refuses an order below the minimum notional, and takes one at exactly the minimum", async () => {
    const user = randomUUID();
    const dust = { symbol: "BTCUSDT", side: "buy", type: "limit", quantity: "0.00000001", limitPrice: "100" };
    const checked = await post(risk, "/check", user, dust);
    expect([checked.body.ok, checked.body.reason, checked.body.message]).toEqual([false, "ORDER_NOTIONAL_TOO_SMALL", "notional 0.000001 is below the minimum 1"]);
    const placed = await post(om[0], "/", user, dust);
    expect([placed.status, placed.body.status, placed.body.rejectReason]).toEqual([201, "rejected", "ORDER_NOTIONAL_TOO_SMALL"]);
    expect((await post(om[0], "/", user, resting())).body.status).toBe("accepted"); // 0.01 x 100 = 1
    expect(await openCount(user)).toBe(1);
  });

  it("reads the count from om_orders_open, never a scan of om_orders", async () => {
    // Other users' history, most of it done: the planner has a table worth an index to read.
    await pool.query(
      `INSERT INTO om_orders (order_id, user_id, client_order_id, request_hash, symbol, side, type, quantity, limit_price, status)
       SELECT gen_random_uuid(), 'bg-' || (g % 400), 'c' || g, 'h', CASE WHEN g % 2 = 0 THEN 'BTCUSDT' ELSE 'ETHUSDT' END, 'buy', 'limit', 1, 100,
              CASE WHEN g % 20 = 0 THEN 'accepted' ELSE 'filled' END
         FROM generate_series(1, 40000) AS g`,
    );
    await pool.query("ANALYZE om_orders");
    const c = await pool.connect();
    try {
      const count = await c.query(
        "EXPLAIN SELECT count(*) FROM (SELECT 1 FROM om_orders WHERE user_id = 'bg-7' AND status IN ('accepted', 'partially_filled', 'pending_cancel') LIMIT 200) AS o",
      );
      const plan = count.rows.map((r) => r["QUERY PLAN"]).join("\n");
      expect(plan).toMatch(/(Bitmap Index Scan on|Index (Only )?Scan using) om_orders_open /);
      expect(plan).not.toMatch(/Seq Scan/);
      // The whole statement of the submit's first round trip, as order-management prepares it.
      await prepareStatements(c, [RISK_FACTS]);
      const pairs = [{ userId: "bg-7", symbol: "BTCUSDT" }, { userId: "bg-8", symbol: "ETHUSDT" }];
      const facts = await c.query(`EXPLAIN ${riskFactsStatement(pairs, 1000, 200)}`);
      const factsPlan = facts.rows.map((r) => r["QUERY PLAN"]).join("\n");
      expect(factsPlan).not.toMatch(/Seq Scan on om_orders/);
      // The open orders' exposure in the symbol and their count in every symbol, each by the index.
      expect(factsPlan.match(/(Bitmap Index Scan on|Index (Only )?Scan using) om_orders_open /g)?.length, factsPlan).toBeGreaterThanOrEqual(2);
      // One user's three symbols in a batch: the user's own facts (open orders in every symbol, the
      // window's order times) are read once, the exposure once per symbol.
      const one = ["BTCUSDT", "ETHUSDT", "SOLUSDT"].map((symbol) => ({ userId: "bg-20", symbol }));
      const analyzed = await c.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${riskFactsStatement(one, 1000, 200)}`);
      type Node = { "Index Name"?: string; "Index Cond"?: string; "Relation Name"?: string; "Actual Loops": number; Plans?: Node[] };
      const nodes = (n: Node): Node[] => [n, ...(n.Plans ?? []).flatMap(nodes)];
      const omOrders = nodes(analyzed.rows[0]["QUERY PLAN"][0].Plan).filter((n) => n["Index Name"]?.startsWith("om_orders"));
      const loops = (perSymbol: boolean) => omOrders.filter((n) => /symbol/.test(n["Index Cond"] ?? "") === perSymbol).reduce((sum, n) => sum + n["Actual Loops"], 0);
      expect(loops(false), JSON.stringify(omOrders)).toBe(2); // the open orders' count and the order times, once each
      expect(loops(true)).toBe(3);
    } finally {
      c.release();
    }
  });
});
