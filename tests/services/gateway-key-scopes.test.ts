/**
 * What an API key reaches through the gateway (api-gateway/key-scopes.ts), against real PostgreSQL,
 * Redis and Kafka with user-management, payment-service (the local card processor,
 * tests/fakes/card-processor.ts), billing-service and the gateway (tests/helpers/platform.ts):
 * - every write route those three services registered (read from the routes themselves, so a route
 *   added later is covered) answers 403 SESSION_REQUIRED to a key of every scope: no charge, no
 *   subscription, plan change or cancellation, no refund (an admin's key included), no key minted,
 *   no password change, no logout; the same requests with a session get through;
 * - reads stay open to read and trade keys; trading writes to trade keys only.
 * Before key-scopes.ts a trade key charged a card (201) and subscribed to a plan through the gateway.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isInternalPath } from "../../services/src/kit";
import { catalog } from "../../services/src/catalog";
import { useServersWith } from "../harness/shared";
import { FakeCardProcessor } from "../fakes/card-processor";
import { startPlatform, type Platform } from "../helpers/platform";
import { http } from "../trading/e2e-helpers";

const srv = useServersWith({ privateKafka: true }, "postgres", "redis", "kafka", "clickhouse");
const fake = new FakeCardProcessor();
const PASSWORD = "correct horse battery staple";
const MONEY_SERVICES = ["user-management", "payment-service", "billing-service"];
let p: Platform;
type User = { id: string; email: string; token: string };
let alice: User;
let admin: User;
const keys: Record<"both" | "trade" | "read" | "adminTrade", string> = { both: "", trade: "", read: "", adminTrade: "" };

const gw = (method: string, path: string, o: { token?: string; key?: string; body?: unknown; headers?: Record<string, string> } = {}) =>
  http(method, `${p.gatewayUrl}${path}`, { token: o.token, body: o.body, headers: { ...o.headers, ...(o.key ? { "x-api-key": o.key } : {}) } });

async function login(email: string, password: string): Promise<User> {
  const r = await gw("POST", "/api/users/login", { body: { email, password } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return { id: r.body.user.id, email, token: r.body.accessToken };
}

async function newKey(token: string, scopes?: string[]): Promise<string> {
  const r = await gw("POST", "/api/users/api-keys", { token, body: { name: "bot", ...(scopes ? { scopes } : {}) } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.key;
}

const count = async (sql: string, args: unknown[] = []) => Number((await p.pool.query(sql, args)).rows[0].n);

beforeAll(async () => {
  await fake.start();
  const adminCreds = { email: `root-${randomBytes(3).toString("hex")}@example.com`, password: "admin-password-123!" };
  p = await startPlatform(
    srv.env,
    {
      BOOTSTRAP_ADMIN_EMAIL: adminCreds.email,
      BOOTSTRAP_ADMIN_PASSWORD: adminCreds.password,
      ...fake.env,
      PAYMENT_RECONCILE_INTERVAL_MS: "0",
      BILLING_CYCLE_INTERVAL_MS: "0",
    },
    { only: ["api-gateway", ...MONEY_SERVICES] },
  );
  const email = `alice-${randomBytes(3).toString("hex")}@example.com`;
  expect((await gw("POST", "/api/users/register", { body: { email, password: PASSWORD } })).status).toBe(201);
  alice = await login(email, PASSWORD);
  admin = await login(adminCreds.email, adminCreds.password);
  keys.both = await newKey(alice.token);
  keys.trade = await newKey(alice.token, ["trade"]);
  keys.read = await newKey(alice.token, ["read"]);
  keys.adminTrade = await newKey(admin.token, ["trade"]);
  const card = await gw("POST", "/api/payments/payment-methods", { token: alice.token, body: { paymentMethod: "pm_card_visa" } });
  expect(card.status, JSON.stringify(card.body)).toBe(201);
  aliceCard = card.body.paymentMethod;
  const plan = await gw("POST", "/api/billing/plans", { token: admin.token, body: { id: `pro-${randomBytes(3).toString("hex")}`, name: "Pro", currency: "usd", amount: 2900, interval: "month" } });
  expect(plan.status, JSON.stringify(plan.body)).toBe(201);
  planId = plan.body.id;
  const other = await gw("POST", "/api/billing/plans", { token: admin.token, body: { id: `max-${randomBytes(3).toString("hex")}`, name: "Max", currency: "usd", amount: 9900, interval: "month" } });
  expect(other.status, JSON.stringify(other.body)).toBe(201);
  otherPlanId = other.body.id;
}, 900_000);
let planId: string;
let otherPlanId: string;
/** A card saved to alice (with her session): only such a card is charged. */
let aliceCard: string;

afterAll(async () => {
  await p?.close();
  await fake.stop();
}, 120_000);

const sessionRequired = (r: { status: number; body: any }, label: string) => {
  expect(r.status, `${label}: ${JSON.stringify(r.body)}`).toBe(403);
  expect(r.body.error, label).toMatchObject({ code: "SESSION_REQUIRED", field: "scope" });
};

describe("API keys and money: a session only", () => {
  it("every write route of user-management, payment-service and billing-service refuses every key (403 SESSION_REQUIRED) and changes nothing", async () => {
    const routed = catalog.filter((s) => MONEY_SERVICES.includes(s.name));
    const before = { intents: await count("SELECT count(*) AS n FROM pay_intents"), subs: await count("SELECT count(*) AS n FROM bil_subscriptions"), keys: await count("SELECT count(*) AS n FROM api_keys") };
    const charged = fake.created;
    const tried: string[] = [];
    const reached: string[] = [];
    for (const def of routed) {
      for (const r of p.services.get(def.name)!.routes) {
        if (isInternalPath(r.url) || r.method === "GET" || r.method === "HEAD" || def.anonymousPaths.includes(r.url)) continue;
        const path = `/api/${def.route}${r.url.replace(/:[A-Za-z]+/g, randomUUID())}`;
        for (const [name, key] of Object.entries(keys)) {
          const res = await gw(r.method, path, { key, body: {}, headers: { "idempotency-key": `k-${randomUUID()}` } });
          if (res.status !== 403 || res.body.error?.code !== "SESSION_REQUIRED" || res.body.error?.field !== "scope") reached.push(`${name} key ${r.method} ${def.route}${r.url} -> ${res.status} ${res.body.error?.code ?? ""}`);
        }
        tried.push(`${r.method} ${def.route}${r.url}`);
      }
    }
    expect(reached).toEqual([]);
    // The money and credential routes the brief names are among them (the enumeration is not empty by accident).
    for (const route of ["POST payments/intents", "POST payments/payment-methods", "DELETE payments/payment-methods/:paymentMethod", "POST payments/intents/:id/refunds", "POST billing/subscriptions", "POST billing/subscriptions/:id/plan", "POST billing/subscriptions/:id/cancel", "POST users/api-keys", "DELETE users/api-keys/:id", "POST users/password", "POST users/logout"])
      expect(tried).toContain(route);
    expect({ intents: await count("SELECT count(*) AS n FROM pay_intents"), subs: await count("SELECT count(*) AS n FROM bil_subscriptions"), keys: await count("SELECT count(*) AS n FROM api_keys") }).toEqual(before);
    expect(fake.created).toBe(charged);
  });

  it("a trade key cannot charge a card, subscribe, change or cancel a plan, or mint a key; a session can", async () => {
    const body = { amount: 2900, currency: "usd", paymentMethod: aliceCard };
    const charged = fake.created;
    sessionRequired(await gw("POST", "/api/payments/intents", { key: keys.trade, body, headers: { "idempotency-key": `k-${randomUUID()}` } }), "charge with a trade key");
    expect(fake.created).toBe(charged);
    const paid = await gw("POST", "/api/payments/intents", { token: alice.token, body, headers: { "idempotency-key": `k-${randomUUID()}` } });
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    expect(paid.body.status).toBe("succeeded");

    sessionRequired(await gw("POST", "/api/billing/subscriptions", { key: keys.trade, body: { planId, paymentMethod: aliceCard } }), "subscribe with a trade key");
    expect(await count("SELECT count(*) AS n FROM bil_subscriptions WHERE user_id = $1", [alice.id])).toBe(0);
    const sub = await gw("POST", "/api/billing/subscriptions", { token: alice.token, body: { planId, paymentMethod: aliceCard } });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    sessionRequired(await gw("POST", `/api/billing/subscriptions/${sub.body.id}/plan`, { key: keys.both, body: { planId: otherPlanId } }), "plan change with a key");
    sessionRequired(await gw("POST", `/api/billing/subscriptions/${sub.body.id}/cancel`, { key: keys.both, body: { atPeriodEnd: false } }), "cancel with a key");
    const { rows } = await p.pool.query("SELECT plan_id, status FROM bil_subscriptions WHERE subscription_id = $1", [sub.body.id]);
    expect(rows[0].plan_id).toBe(planId);
    expect(rows[0].status).not.toBe("canceled");

    // Privilege escalation: a trade key asking for a key with both scopes.
    sessionRequired(await gw("POST", "/api/users/api-keys", { key: keys.trade, body: { name: "escalated", scopes: ["read", "trade"] } }), "mint a key with a key");
    sessionRequired(await gw("POST", "/api/users/password", { key: keys.both, body: { currentPassword: PASSWORD, newPassword: "another long password" } }), "password change with a key");
    sessionRequired(await gw("POST", "/api/users/logout", { key: keys.both, body: { all: true } }), "log every session out with a key");
    expect((await gw("GET", "/api/users/me", { token: alice.token })).status).toBe(200);

    // An admin's key refunds nothing; the admin's session does.
    sessionRequired(await gw("POST", `/api/payments/intents/${paid.body.id}/refunds`, { key: keys.adminTrade, body: {}, headers: { "idempotency-key": `r-${randomUUID()}` } }), "refund with an admin's key");
    expect(fake.refunds.filter((r) => r.payment_intent === paid.body.processorIntentId)).toEqual([]);
    const refund = await gw("POST", `/api/payments/intents/${paid.body.id}/refunds`, { token: admin.token, body: { amount: 100 }, headers: { "idempotency-key": `r-${randomUUID()}` } });
    expect(refund.status, JSON.stringify(refund.body)).toBe(200);
  });

  it("reads stay open to read and trade keys; trading writes need the trade scope", async () => {
    for (const key of [keys.read, keys.trade]) {
      for (const path of ["/api/payments/intents", "/api/payments/payment-methods", "/api/billing/invoices", "/api/billing/subscriptions", "/api/users/me", "/api/users/api-keys"]) {
        const r = await gw("GET", path, { key });
        expect(r.status, `${path}: ${JSON.stringify(r.body)}`).toBe(200);
      }
    }
    // order-management is not started here: a request the gateway lets through ends at the
    // unreachable upstream (502/504), one it refuses is its 403.
    const order = { symbol: "BTCUSDT", side: "buy", type: "market", quantity: 0.001 };
    const refused = await gw("POST", "/api/orders", { key: keys.read, body: order });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: "INSUFFICIENT_SCOPE", field: "scope" });
    for (const key of [keys.trade, keys.both]) expect([502, 504]).toContain((await gw("POST", "/api/orders", { key, body: order })).status);
    sessionRequired(await gw("POST", "/api/orders/not-an-order/anything", { key: keys.trade, body: {} }), "an unlisted orders path");
  });
});

describe("refund issues closed through the gateway: the caller's credential recorded", () => {
  /** A refund the processor makes 10 cents short (its status `status`): pending here, an amount_mismatch issue. Answers the issue's id. */
  async function mismatchIssue(status: "succeeded" | "pending"): Promise<string> {
    const paid = await gw("POST", "/api/payments/intents", { token: alice.token, body: { amount: 1_000, currency: "usd", paymentMethod: aliceCard }, headers: { "idempotency-key": `k-${randomUUID()}` } });
    expect(paid.body.status, JSON.stringify(paid.body)).toBe("succeeded");
    Object.assign(fake, { refundsDiverge: { amountOff: -10 }, refundStatus: status });
    const r = await gw("POST", `/api/payments/intents/${paid.body.id}/refunds`, { token: admin.token, body: { amount: 500 }, headers: { "idempotency-key": `r-${randomUUID()}` } });
    Object.assign(fake, { refundsDiverge: undefined, refundStatus: "succeeded" });
    expect(r.body.refund?.status, JSON.stringify(r.body)).toBe("pending");
    const issues = (await gw("GET", "/api/payments/refund-issues", { token: admin.token })).body.issues as { id: string; intentId: string }[];
    return issues.find((i) => i.intentId === paid.body.id)!.id;
  }
  const stored = async (issueId: string) =>
    (await p.pool.query("SELECT resolved_at IS NOT NULL AS resolved, resolved_by, resolved_auth_method FROM pay_refund_issues WHERE issue_id = $1", [issueId])).rows[0];

  it("a session is recorded as `jwt`; an admin's API key never reaches the close nor the settle (403 SESSION_REQUIRED, nothing recorded)", async () => {
    for (const action of ["resolve", "settle"]) {
      const id = await mismatchIssue(action === "settle" ? "succeeded" : "pending");
      for (const key of [keys.adminTrade, keys.both])
        sessionRequired(await gw("POST", `/api/payments/refund-issues/${id}/${action}`, { key, body: { note: "closed with a key" } }), `${action} with a key`);
      expect(await stored(id)).toEqual({ resolved: false, resolved_by: null, resolved_auth_method: null });
      const closed = await gw("POST", `/api/payments/refund-issues/${id}/${action}`, { token: admin.token, body: { note: "closed with a session" } });
      expect(closed.status, JSON.stringify(closed.body)).toBe(200);
      expect(closed.body).toMatchObject({ resolvedBy: admin.id, resolvedAuthMethod: "jwt", resolutionNote: "closed with a session", settledStatus: action === "settle" ? "succeeded" : null });
      expect(await stored(id)).toEqual({ resolved: true, resolved_by: admin.id, resolved_auth_method: "jwt" });
    }
  });

  it("the service records the credential kind the identity headers carry: `api-key` when a caller inside the cluster says so", async () => {
    const id = await mismatchIssue("pending");
    const direct = await http("POST", `${p.urls.get("payment-service")}/refund-issues/${id}/resolve`, {
      body: { note: "closed by an operator's tool" },
      headers: { "x-user-id": admin.id, "x-user-role": "admin", "x-auth-method": "api-key", "x-api-key-id": randomUUID(), "x-api-key-scopes": "read,trade" },
    });
    expect(direct.status, JSON.stringify(direct.body)).toBe(200);
    expect(await stored(id)).toEqual({ resolved: true, resolved_by: admin.id, resolved_auth_method: "api-key" });
  });

  it("a peer's call without x-auth-method is no session: 401 naming it, nothing recorded; `service` is recorded as such", async () => {
    const id = await mismatchIssue("pending");
    const resolve = (headers: Record<string, string>) => http("POST", `${p.urls.get("payment-service")}/refund-issues/${id}/resolve`, { body: { note: "closed by a peer" }, headers });
    for (const method of [undefined, "session"]) {
      const bare = await resolve({ "x-user-id": admin.id, "x-user-role": "admin", ...(method ? { "x-auth-method": method } : {}) });
      expect([bare.status, bare.body.error?.field]).toEqual([401, "x-auth-method"]);
    }
    expect(await stored(id)).toEqual({ resolved: false, resolved_by: null, resolved_auth_method: null });
    // Through the gateway a client cannot claim it: the header is stripped, the caller's credential set.
    const claimed = await gw("POST", `/api/payments/refund-issues/${id}/resolve`, { token: admin.token, body: { note: "claims service" }, headers: { "x-auth-method": "service" } });
    expect(claimed.body.resolvedAuthMethod, JSON.stringify(claimed.body)).toBe("jwt");
    const other = await mismatchIssue("pending");
    const peer = await http("POST", `${p.urls.get("payment-service")}/refund-issues/${other}/resolve`, { body: { note: "closed by a peer" }, headers: { "x-user-id": admin.id, "x-user-role": "admin", "x-auth-method": "service" } });
    expect(peer.status, JSON.stringify(peer.body)).toBe(200);
    expect(await stored(other)).toEqual({ resolved: true, resolved_by: admin.id, resolved_auth_method: "service" });
  });
});
