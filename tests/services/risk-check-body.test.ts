/**
 * risk-analyzer's `POST /check` (the pre-trade check as a what-if) takes the body of
 * order-management's `POST /` (placing the order) and refuses what it refuses, with the same 400
 * naming the same field (found by session 47's hunt): the check had a schema of its own, wider than
 * the order's, and left the rest to the risk rules, so it answered `ok: true` for orders the platform
 * refuses to take (a market order with a limit price, a quantity of 18 decimals or 18 integer digits)
 * and a 200 `INVALID_ORDER` for a limit order without its price or a quantity of 0, where the rule is
 * a 400 naming the field. Real PostgreSQL and Redis (the check reads the position, the order rate and
 * the kill switch from them; Kafka and ClickHouse because both services start with them).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "../harness";
import { useServers } from "../harness/shared";
import { migrateAll } from "../helpers/schemas";
import { createService, type Service } from "../../services/src/kit";
import orderManagement from "../../services/src/services/order-management";
import riskAnalyzer from "../../services/src/services/risk-analyzer";
import { lastPriceKey } from "../../services/src/trading/events";

const srv = useServers("postgres", "redis", "kafka", "clickhouse");
let om: Service;
let risk: Service;

beforeAll(async () => {
  const pool = await migrateAll(srv.env);
  await pool.end();
  const redis = new Redis(srv.env.DRAGONFLY_URL);
  await redis.set(lastPriceKey("BTCUSDT"), "100");
  redis.disconnect();
  const env = { ...srv.env, LOG_LEVEL: "silent", OM_CONSUMER_GROUP: `om-${randomUUID()}` };
  risk = await createService(riskAnalyzer, { env, defaultMetrics: false });
  om = await createService(orderManagement, { env, defaultMetrics: false });
}, 600_000);
afterAll(async () => {
  await om?.close();
  await risk?.close();
});

const as = (userId: string) => ({ "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" });
async function post(svc: Service, url: string, userId: string, body: unknown) {
  const r = await svc.app.inject({ method: "POST", url, headers: as(userId), payload: body as object });
  return { status: r.statusCode, body: r.json() };
}

const market = { symbol: "BTCUSDT", side: "buy", type: "market", quantity: "1" };
const limit = { ...market, type: "limit", limitPrice: "100" };

describe("POST /check takes the order's body", () => {
  it("refuses what POST /orders refuses, with a 400 naming the same field", async () => {
    const refused: Array<[string, Record<string, unknown>, string]> = [
      ["a market order with a limit price", { ...market, limitPrice: "100" }, "limitPrice"],
      ["a limit order without its price", { ...market, type: "limit" }, "limitPrice"],
      ["a quantity of 0", { ...market, quantity: "0" }, "quantity"],
      ["a quantity of 0.00000000", { ...market, quantity: "0.00000000" }, "quantity"],
      ["a limit price of 0", { ...limit, limitPrice: "0" }, "limitPrice"],
      ["a quantity of 18 decimals", { ...market, quantity: "0.000000000000000001" }, "quantity"],
      ["a quantity of 9 decimals", { ...market, quantity: "1.000000001" }, "quantity"],
      ["a quantity of 18 integer digits", { ...market, quantity: "100000000000000000" }, "quantity"],
      ["a limit price of 18 decimals", { ...limit, limitPrice: "100.000000000000000001" }, "limitPrice"],
      ["an unknown field", { ...market, leverage: "100" }, "leverage"],
      ["a time in force that does not exist", { ...limit, timeInForce: "FOK" }, "timeInForce"],
    ];
    for (const [what, body, field] of refused) {
      const user = randomUUID();
      const placed = await post(om, "/", user, body);
      const checked = await post(risk, "/check", user, body);
      expect([placed.status, placed.body.error?.field], `POST /orders, ${what}`).toEqual([400, field]);
      expect([checked.status, checked.body.error?.field], `POST /check, ${what}`).toEqual([400, field]);
      expect(checked.body.error.code, what).toBe("VALIDATION_ERROR");
    }
  });

  it("checks every order POST /orders takes, its optional fields included", async () => {
    // The smallest the schema takes (0.00000001) is a decision of the check, not a 400: below the minimum notional (next test).
    for (const body of [market, limit, { ...limit, timeInForce: "IOC", clientOrderId: "my-order-1" }, { ...market, quantity: "0.01" }]) {
      const user = randomUUID();
      const checked = await post(risk, "/check", user, body);
      expect(checked.status, JSON.stringify(body)).toBe(200);
      expect(checked.body.ok, JSON.stringify(body)).toBe(true);
      const placed = await post(om, "/", user, body);
      expect([placed.status, placed.body.status], JSON.stringify(body)).toEqual([201, "accepted"]);
    }
  });

  it("answers a breach of a limit as the order would be rejected (a decision, not a 400)", async () => {
    const user = randomUUID();
    const big = { ...market, quantity: "101" };
    const checked = await post(risk, "/check", user, big);
    expect([checked.status, checked.body.ok, checked.body.reason]).toEqual([200, false, "ORDER_QUANTITY_EXCEEDED"]);
    const placed = await post(om, "/", user, big);
    expect([placed.status, placed.body.status, placed.body.rejectReason]).toEqual([201, "rejected", "ORDER_QUANTITY_EXCEEDED"]);
  });

  it("answers an order below the minimum notional as the order is rejected: ORDER_NOTIONAL_TOO_SMALL, naming the minimum", async () => {
    // Before, an order of 0.00000001 (its fee rounds to 0) was ok here and accepted there.
    for (const dust of [{ ...market, quantity: "0.00000001" }, { ...limit, quantity: "0.00999999" }]) {
      const user = randomUUID();
      const checked = await post(risk, "/check", user, dust);
      expect([checked.status, checked.body.ok, checked.body.reason], JSON.stringify(dust)).toEqual([200, false, "ORDER_NOTIONAL_TOO_SMALL"]);
      expect(checked.body.message).toMatch(/below the minimum 1$/);
      expect(checked.body.limits).toMatchObject({ minOrderNotional: "1", maxOpenOrders: 200 });
      const placed = await post(om, "/", user, dust);
      expect([placed.status, placed.body.status, placed.body.rejectReason, placed.body.rejectMessage], JSON.stringify(dust)).toEqual([201, "rejected", "ORDER_NOTIONAL_TOO_SMALL", checked.body.message]);
    }
  });
});
