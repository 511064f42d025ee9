/**
 * The race suite (session 49): the SAME client sending the same or conflicting writes at once, on
 * separate connections, through the gateway against real PostgreSQL, Redis, Kafka and ClickHouse
 * (earlier suites sent most of these one after another, or to one service's classes):
 * - one dedupe key many times at once: one effect, the same answer (or a clear 409), never two rows;
 * - conflicting transitions at once: cancels, refunds past the charge, a plan change against a
 *   cancellation, delete against update (strategy, configuration key, API key, webhook), a password
 *   change against logins, registrations of one e-mail in case variants, locks, preference writes;
 * - credentials ended while requests are in flight (an API key revoked, an account disabled or
 *   deleted: nothing made for a deleted account after the deletion's answer), a kill switch flipped;
 * - limits passed by sending N at once: wrong API keys per address, requests per user, and the
 *   per-user caps (strategies, open backtest jobs, payment methods, webhooks).
 * Every answer is judged by ./oracle.ts (no 5xx, no internal details); a lost race is a 4xx naming
 * the conflict. One platform for all of them (./race-rig.ts sends).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createService, type Service } from "../../services/src/kit";
import { registry } from "../../services/src/registry";
import { BillingRepo } from "../../services/src/services/billing-service/repo";
import { useServersWith } from "../harness/shared";
import { waitFor } from "../harness";
import { PATIENCE_MS } from "../helpers/patience";
import { FakeCardProcessor } from "../fakes/card-processor";
import { startPlatform, type Platform } from "../helpers/platform";
import { count, freshAddress, PASSWORD, RaceClient, statuses, type User } from "./race-rig";

const srv = useServersWith({}, "postgres", "redis", "kafka", "clickhouse");
const ADMIN = { email: `root-${randomBytes(3).toString("hex")}@example.com`, password: "admin-password-123!" };
const CAPS = { API_KEY_MAX_FAILURES: 5, ORCH_MAX_STRATEGIES_PER_USER: 3, BACKTEST_MAX_OPEN_JOBS_PER_USER: 3, PAYMENT_MAX_METHODS_PER_USER: 3, NOTIFY_MAX_WEBHOOKS: 3, RATE_LIMIT_MAX_REQUESTS: 20 };
const fake = new FakeCardProcessor();
let p: Platform;
let internalPorts: number[] = [];
let admin: string;
/** A second gateway in front of the same services, at RATE_LIMIT_MAX_REQUESTS 20. */
let limited: Service<any>;
let limitedUrl: string;
const c = new RaceClient(() => p.gatewayUrl, () => internalPorts);
const SYMBOL = `RC${randomBytes(3).toString("hex").toUpperCase()}USDT`;

beforeAll(async () => {
  await fake.start();
  p = await startPlatform(
    srv.env,
    {
      ...fake.env, BOOTSTRAP_ADMIN_EMAIL: ADMIN.email, BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password, TRUST_PROXY: "127.0.0.1/32",
      ...Object.fromEntries(Object.entries(CAPS).filter(([k]) => k !== "RATE_LIMIT_MAX_REQUESTS").map(([k, v]) => [k, String(v)])),
      BACKTEST_WORKER: "false", ORCH_TICK_MS: "0", BILLING_CYCLE_INTERVAL_MS: "0", PAYMENT_RECONCILE_INTERVAL_MS: "0",
    },
    { only: ["api-gateway", "user-management", "order-management", "risk-analyzer", "configuration-service", "central-hub", "notification-service", "ai-orchestrator", "backtesting-engine", "payment-service", "billing-service"] },
  );
  internalPorts = [srv.postgres.url, srv.redis.url, srv.env.KAFKA_BROKERS, srv.env.CLICKHOUSE_URL].map((u) => Number(/:(\d+)(?:\/|$)/.exec(u)?.[1] ?? 0)).filter(Boolean);
  limited = await createService(await registry["api-gateway"](), { env: { ...p.env, RATE_LIMIT_MAX_REQUESTS: String(CAPS.RATE_LIMIT_MAX_REQUESTS), RATE_LIMIT_WINDOW_MS: "600000" }, defaultMetrics: false });
  limitedUrl = await limited.listen({ port: 0, host: "127.0.0.1" });
  await p.services.get("order-management")!.app.redis.set(`market:last:${SYMBOL}`, "100");
  admin = (await c.login(ADMIN.email, ADMIN.password)).token;
}, 600_000);

// Each test judges its own answers.
beforeEach(() => {
  c.failures.length = 0;
});

afterAll(async () => {
  await limited?.close();
  await p?.close();
  await fake.stop();
}, 120_000);

describe("accounts and credentials", () => {
  it("one e-mail registered 16 times at once, in case variants: one account, the others 409 EMAIL_TAKEN naming email", async () => {
    const local = `Race-${randomBytes(4).toString("hex")}`;
    const spell = (i: number) => (i % 3 === 0 ? `${local}@Example.COM` : i % 3 === 1 ? `${local.toLowerCase()}@example.com` : `${local.toUpperCase()}@EXAMPLE.com`);
    const answers = await c.burst(16, (i) => c.send("POST", "/api/users/register", { body: { email: spell(i), password: PASSWORD }, ip: freshAddress() }));
    expect(statuses(answers)).toEqual([201, ...Array(15).fill(409)]);
    for (const a of answers.filter((x) => x.status === 409)) expect([a.json.error.code, a.json.error.field]).toEqual(["EMAIL_TAKEN", "email"]);
    expect((await p.pool.query("SELECT count(*)::int AS n FROM users WHERE lower(email) = lower($1)", [spell(0)])).rows[0].n).toBe(1);
    expect(c.failures).toEqual([]);
  });

  it("a password changed twice at once while the old one logs in 8 times: one change stands, and no session of the old password survives it", async () => {
    const u = await c.user("pw");
    const change = (to: string) => c.send("POST", "/api/users/password", { token: u.token, body: { currentPassword: PASSWORD, newPassword: to }, ip: freshAddress() });
    const [a, b, ...logins] = await Promise.all([change("first new password 1"), change("second new password 2"), ...Array.from({ length: 8 }, () => c.send("POST", "/api/users/login", { body: { email: u.email, password: PASSWORD }, ip: freshAddress() }))]);
    expect(statuses([a, b])[0]).toBe(200);
    const loser = a.status === 200 ? b : a;
    expect([[409, "PASSWORD_CHANGED"], [403, "INVALID_CREDENTIALS"], [401, "CREDENTIALS_REVOKED"]]).toContainEqual([loser.status, loser.json.error.code]);
    const winner = a.status === 200 ? "first new password 1" : "second new password 2";
    for (const l of logins) expect([200, 401], l.text).toContain(l.status);
    // A login of the old password that got a session had it ended by the change.
    for (const l of logins.filter((x) => x.status === 200)) expect((await c.send("POST", "/api/users/refresh", { body: { refreshToken: l.json.refreshToken } })).status).toBe(401);
    expect((await c.send("POST", "/api/users/login", { body: { email: u.email, password: winner }, ip: freshAddress() })).status).toBe(200);
    for (const pw of [PASSWORD, winner === "first new password 1" ? "second new password 2" : "first new password 1"])
      expect((await c.send("POST", "/api/users/login", { body: { email: u.email, password: pw }, ip: freshAddress() })).status).toBe(401);
    expect(c.failures).toEqual([]);
  });

  it("one refresh token presented 10 times at once: at most one new session, no 5xx", async () => {
    const u = await c.user("refresh");
    const answers = await c.burst(10, () => c.send("POST", "/api/users/refresh", { body: { refreshToken: u.refreshToken } }));
    expect(count(answers, 200)).toBeLessThanOrEqual(1);
    expect(answers.every((a) => [200, 401].includes(a.status)), JSON.stringify(statuses(answers))).toBe(true);
    expect(c.failures).toEqual([]);
  });

  it(`well-formed wrong API keys sent 30 at once from one address: at most API_KEY_MAX_FAILURES (${CAPS.API_KEY_MAX_FAILURES}) are looked up, the others 429`, async () => {
    const ip = freshAddress();
    const wrong = () => `atk_${randomBytes(32).toString("base64url")}`;
    const answers = await c.burst(30, () => c.send("GET", "/api/users/me", { key: wrong(), ip }));
    expect(answers.every((a) => [401, 429].includes(a.status))).toBe(true);
    expect(count(answers, 401), JSON.stringify(statuses(answers))).toBeLessThanOrEqual(CAPS.API_KEY_MAX_FAILURES);
    // Malformed keys are counted the same way.
    const ip2 = freshAddress();
    const malformed = await c.burst(30, (i) => c.send("GET", "/api/users/me", { key: `not-a-key-${i}`, ip: ip2 }));
    expect(count(malformed, 401), JSON.stringify(statuses(malformed))).toBeLessThanOrEqual(CAPS.API_KEY_MAX_FAILURES);
    // A valid key sent 20 times at once from a fresh address, before any cache holds it: all pass.
    const u = await c.user("bot");
    const key = (await c.send("POST", "/api/users/api-keys", { token: u.token, body: { name: "bot" } })).json.key as string;
    const ip3 = freshAddress();
    const valid = await c.burst(20, () => c.send("GET", "/api/users/me", { key, ip: ip3 }));
    expect(statuses(valid)).toEqual(Array(20).fill(200));
    expect(c.failures).toEqual([]);
  });

  it("an API key revoked while 30 requests use it, by 8 revocations at once (a revocation is idempotent: each 204), then refused everywhere", async () => {
    const u = await c.user("revoke");
    const k = (await c.send("POST", "/api/users/api-keys", { token: u.token, body: { name: "in use" } })).json;
    const ip = freshAddress();
    const uses = c.burst(30, (i) => new Promise((r) => setTimeout(r, i * 3)).then(() => c.send("GET", "/api/orders", { key: k.key, ip })));
    const revokes = await c.burst(8, () => c.send("DELETE", `/api/users/api-keys/${k.id}`, { token: u.token }));
    expect(statuses(revokes)).toEqual(Array(8).fill(204));
    expect((await p.pool.query("SELECT count(*)::int AS n FROM api_keys WHERE id = $1 AND revoked_at IS NOT NULL", [k.id])).rows[0].n).toBe(1);
    for (const a of await uses) expect([200, 401, 429]).toContain(a.status);
    const t0 = Date.now();
    while ((await c.send("GET", "/api/users/me", { key: k.key, ip: freshAddress() })).status === 200) expect(Date.now() - t0, "revoked key still accepted").toBeLessThan(1_500);
    for (const path of ["/api/orders", "/api/config/namespaces/x", "/api/ai/strategies", "/api/payments/intents", "/api/notifications/preferences"])
      expect([401, 429], path).toContain((await c.send("GET", path, { key: k.key, ip: freshAddress() })).status);
    expect(c.failures).toEqual([]);
  });

  it("an account disabled while its token and key are in use: no 5xx, refused within a second of the answer, and disables and enables at once end in the state last committed", async () => {
    const u = await c.user("disable");
    const key = (await c.send("POST", "/api/users/api-keys", { token: u.token, body: { name: "d" } })).json.key as string;
    const order = { symbol: SYMBOL, side: "buy", type: "limit", quantity: "0.1", limitPrice: "97" };
    const inFlight = c.burst(30, (i) => c.send(i % 2 ? "POST" : "GET", "/api/orders", { ...(i % 3 ? { token: u.token } : { key }), body: i % 2 ? order : undefined, ip: freshAddress() }));
    const off = await c.send("POST", `/api/users/admin/users/${u.id}/disable`, { token: admin });
    expect(off.status, off.text).toBe(200);
    for (const a of await inFlight) expect([200, 201, 401], a.text).toContain(a.status);
    const t0 = Date.now();
    for (;;) {
      const after = await Promise.all([c.send("GET", "/api/orders", { token: u.token }), c.send("GET", "/api/orders", { key, ip: freshAddress() })]);
      if (after.every((a) => a.status === 401)) break;
      expect(Date.now() - t0, "disabled account still accepted").toBeLessThan(1_500);
    }
    const flips = await c.burst(12, (i) => c.send("POST", `/api/users/admin/users/${u.id}/${i % 2 ? "enable" : "disable"}`, { token: admin }));
    expect(statuses(flips)).toEqual(Array(12).fill(200));
    const row = (await p.pool.query("SELECT disabled_at IS NOT NULL AS disabled FROM users WHERE id = $1", [u.id])).rows[0];
    const login = await c.send("POST", "/api/users/login", { body: { email: u.email, password: PASSWORD }, ip: freshAddress() });
    expect(login.status).toBe(row.disabled ? 401 : 200);
    expect(c.failures).toEqual([]);
  });

  it("an account deleted while 40 of its writes to every service are in flight: no 5xx, and nothing made for it after the deletion's answer (no charge, card, strategy, backtest, order, key or webhook)", async () => {
    for (let round = 0; round < 3; round++) {
      const u = await c.user("deleted");
      const pm = (await c.send("POST", "/api/payments/payment-methods", { token: u.token, body: { paymentMethod: "pm_card_visa" } })).json.paymentMethod as string;
      const writes: Array<[string, string, unknown]> = [
        ["POST", "/api/orders", { symbol: SYMBOL, side: "buy", type: "limit", quantity: "0.1", limitPrice: "97" }],
        ["POST", "/api/ai/strategies", { name: "doomed", symbols: [SYMBOL], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 100 }],
        ["POST", "/api/backtests", { strategy: "sma-crossover", symbols: ["BTCUSDT"], interval: "1d", period: { start: "2024-01-01T00:00:00Z", end: "2024-02-01T00:00:00Z" }, data: { source: "synthetic", seed: 3 } }],
        ["POST", "/api/payments/payment-methods", { paymentMethod: "pm_card_visa" }],
        ["POST", "/api/payments/intents", { amount: 1_000, currency: "usd", paymentMethod: pm }],
        ["PUT", "/api/notifications/preferences", { email: null, telegramChatId: null, timeZone: "UTC" }],
        ["POST", "/api/notifications/webhooks", { url: "https://hooks.example.com/doomed" }],
        ["POST", "/api/users/api-keys", { name: "doomed" }],
      ];
      // A strategy of the account's, made before: its edits meet the deletion too (session 51).
      const kept = (await c.send("POST", "/api/ai/strategies", { token: u.token, body: { ...(writes[1][2] as object), name: "kept" } })).json.strategyId as string;
      const inFlight = c.burst(40, (i) => new Promise((r) => setTimeout(r, (i % 10) * 4)).then(() => {
        const [method, path, body] = writes[i % writes.length];
        return c.send(method, path, { token: u.token, body, headers: { "idempotency-key": `doomed-${i}-${randomBytes(4).toString("hex")}` }, ip: freshAddress() });
      }));
      const gone = await c.send("DELETE", `/api/users/admin/users/${u.id}`, { token: admin });
      expect(gone.status, gone.text).toBe(204);
      const answered = new Date();
      for (const a of await inFlight) expect(a.status, a.text).toBeLessThan(500);
      // Nothing made for it after the deletion answered: each service reads the tombstone under the account's row lock before it writes (kit lockAccountForWrite).
      for (const [table, owner] of [["pay_intents", "user_id"], ["pay_payment_methods", "user_id"], ["ai_strategies", "user_id"], ["bt_runs", "owner_id"], ["om_orders", "user_id"], ["api_keys", "user_id"], ["nt_webhooks", "user_id"]]) {
        const late = await p.pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${owner}::text = $1 AND created_at > $2`, [u.id, answered]);
        expect(late.rows[0].n, `${table} rows of the deleted account after the deletion's answer (round ${round})`).toBe(0);
      }
      for (const a of (await inFlight).filter((x) => x.status === 403)) expect([a.json.error.code, a.json.error.field]).toEqual(["ACCOUNT_DELETED", "userId"]);
      // What such a request meets at payment-service once the deletion committed (the gateway refuses the account's tokens now).
      const as = { "x-user-id": u.id, "x-user-role": "trader", "x-auth-method": "jwt", "content-type": "application/json" };
      for (const [service, url, body] of [["payment-service", "/intents", { amount: 1_000, currency: "usd", paymentMethod: pm }], ["payment-service", "/payment-methods", { paymentMethod: "pm_card_visa" }], ["ai-orchestrator", "/strategies", writes[1][2]], ["backtesting-engine", "/", writes[2][2]], ["order-management", "/", writes[0][2]], ["notification-service", "/webhooks", writes[6][2]]] as const) {
        const r = await p.services.get(service)!.app.inject({ method: "POST", url, headers: { ...as, "idempotency-key": `late-${randomBytes(4).toString("hex")}` }, payload: JSON.stringify(body) });
        expect([r.statusCode, r.json().error?.code, r.json().error?.field], r.body).toEqual([403, "ACCOUNT_DELETED", "userId"]);
      }
      const { "content-type": _json, ...noBody } = as;
      for (const [method, url, body] of [["PATCH", `/strategies/${kept}`, { name: "late" }], ["POST", `/strategies/${kept}/enable`, undefined]] as const) {
        const r = await p.services.get("ai-orchestrator")!.app.inject({ method, url, headers: body ? as : noBody, payload: body && JSON.stringify(body) });
        expect([r.statusCode, r.json().error?.code, r.json().error?.field], r.body).toEqual([403, "ACCOUNT_DELETED", "userId"]);
      }
    }
    expect(c.failures).toEqual([]);
  });

  it(`60 requests of one user at once at RATE_LIMIT_MAX_REQUESTS ${CAPS.RATE_LIMIT_MAX_REQUESTS}: exactly that many pass`, async () => {
    const u = await c.user("flood");
    const answers = await c.burst(60, () => c.send("GET", "/api/users/me", { token: u.token, ip: freshAddress() }, limitedUrl));
    expect(count(answers, 200)).toBe(CAPS.RATE_LIMIT_MAX_REQUESTS);
    expect(count(answers, 429)).toBe(60 - CAPS.RATE_LIMIT_MAX_REQUESTS);
    expect(c.failures).toEqual([]);
  });
});

describe("orders, configuration, strategies and backtests", () => {
  const order = { symbol: SYMBOL, side: "buy", type: "limit", quantity: "0.1", limitPrice: "97" };

  it("one Idempotency-Key sent 15 times at once, by token and API key alike: one order, one 201, the others replay it; 15 cancels of it at once: one cancel event", async () => {
    const u = await c.user("orders");
    const key = (await c.send("POST", "/api/users/api-keys", { token: u.token, body: { name: "o", scopes: ["trade"] } })).json.key as string;
    const idem = { "idempotency-key": `race-${randomBytes(6).toString("hex")}` };
    const answers = await c.burst(15, (i) => c.send("POST", "/api/orders", { ...(i % 2 ? { token: u.token } : { key }), body: order, headers: idem, ip: freshAddress() }));
    expect(statuses(answers)).toEqual([...Array(14).fill(200), 201]);
    const id = answers[0].json.orderId as string;
    expect(answers[0].json.status, answers[0].text).toBe("accepted");
    expect(new Set(answers.map((a) => a.json.orderId))).toEqual(new Set([id]));
    expect((await p.pool.query("SELECT count(*)::int AS n FROM om_orders WHERE user_id = $1", [u.id])).rows[0].n).toBe(1);
    const cancels = await c.burst(15, () => c.send("POST", `/api/orders/${id}/cancel`, { token: u.token }));
    expect(statuses(cancels), cancels[0].text).toEqual(Array(15).fill(202));
    const events = await p.pool.query("SELECT count(*)::int AS n FROM om_outbox WHERE payload::text LIKE $1 AND payload::text LIKE '%pending_cancel%'", [`%${id}%`]);
    expect(events.rows[0].n).toBe(1);
    expect(c.failures).toEqual([]);
  });

  it("a user's kill switch turned on and off 16 times at once while 20 of their orders are in flight: no 5xx; recorded, enforced and last audited state agree", async () => {
    const u = await c.user("switch");
    const flips = c.burst(16, (i) => c.send("PUT", `/api/risk/trading-state/users/${u.id}`, { token: admin, body: { state: i % 2 ? "active" : "halted", reason: `race flip ${i}` } }));
    const orders = c.burst(20, () => c.send("POST", "/api/orders", { token: u.token, body: order, ip: freshAddress() }));
    for (const a of await flips) expect(a.status, a.text).toBe(200);
    for (const a of await orders) expect([200, 201, 403, 409, 423], a.text).toContain(a.status);
    const now = (await c.send("GET", `/api/risk/trading-state/users/${u.id}`, { token: admin })).json;
    const last = (await p.pool.query("SELECT to_state FROM trading_state_changes WHERE user_id = $1 ORDER BY id DESC LIMIT 1", [u.id])).rows[0];
    expect([now.state, now.enforced]).toEqual([last.to_state, last.to_state]);
    expect(c.failures).toEqual([]);
  });

  it("a configuration key updated 10 times and deleted 10 times at once at one expectedVersion: one change, the others 409 naming expectedVersion; 12 plain deletes: one", async () => {
    const path = `/api/config/namespaces/race/keys/k-${randomBytes(3).toString("hex")}`;
    expect((await c.send("PUT", path, { token: admin, body: { value: { v: 0 } } })).status).toBe(201);
    const answers = await c.burst(20, (i) => (i % 2 ? c.send("PUT", path, { token: admin, body: { value: { v: i }, expectedVersion: 1 } }) : c.send("DELETE", `${path}?expectedVersion=1`, { token: admin })));
    expect(count(answers, 200), JSON.stringify(statuses(answers))).toBe(1);
    for (const a of answers.filter((x) => x.status !== 200)) expect([a.status, a.json.error.field], a.text).toEqual([409, "expectedVersion"]);
    const winner = answers.findIndex((a) => a.status === 200);
    const now = await c.send("GET", path, { token: admin });
    if (winner % 2) expect(now.json.value).toEqual({ v: winner });
    else expect(now.status).toBe(404);
    if (now.status === 200) {
      const deletes = await c.burst(12, () => c.send("DELETE", path, { token: admin }));
      expect(statuses(deletes)).toEqual([200, ...Array(11).fill(404)]);
    }
    expect(c.failures).toEqual([]);
  });

  it(`strategies created 10 at once at ORCH_MAX_STRATEGIES_PER_USER ${CAPS.ORCH_MAX_STRATEGIES_PER_USER}; 16 evaluations at once at ORCH_EVALUATIONS_PER_MINUTE 12; one deleted, changed, enabled and disabled at once: no change after the delete`, async () => {
    const u = await c.user("strategies");
    const strategy = (i: number) => ({ name: `s${i}`, symbols: [SYMBOL], buyAbove: 0.6, sellBelow: 0.4, orderQuantity: 1, maxPosition: 10, stopLoss: 100 });
    const made = await c.burst(10, (i) => c.send("POST", "/api/ai/strategies", { token: u.token, body: strategy(i) }));
    expect(statuses(made)).toEqual([...Array(3).fill(201), ...Array(7).fill(409)]);
    expect((await c.send("GET", "/api/ai/strategies", { token: u.token })).json.strategies).toHaveLength(3);
    const id = made.find((a) => a.status === 201)!.json.strategyId as string;
    // Evaluations asked 16 at once of an enabled strategy: at most ORCH_EVALUATIONS_PER_MINUTE (12) run, the others 429.
    const other = made.filter((a) => a.status === 201)[1].json.strategyId as string;
    expect((await c.send("POST", `/api/ai/strategies/${other}/enable`, { token: u.token })).status).toBe(200);
    const evaluations = await c.burst(16, () => c.send("POST", `/api/ai/strategies/${other}/evaluate`, { token: u.token }));
    expect(statuses(evaluations)).toEqual([...Array(12).fill(200), ...Array(4).fill(429)]);
    for (const a of evaluations.filter((x) => x.status === 429)) expect(a.json.error.code).toBe("EVALUATION_LIMIT");
    const ops = await c.burst(16, (i) =>
      i % 4 === 0 ? c.send("DELETE", `/api/ai/strategies/${id}`, { token: u.token })
      : i % 4 === 1 ? c.send("PATCH", `/api/ai/strategies/${id}`, { token: u.token, body: { buyAbove: 0.7 + i / 100 } })
      : c.send("POST", `/api/ai/strategies/${id}/${i % 4 === 2 ? "enable" : "disable"}`, { token: u.token }));
    for (const [i, a] of ops.entries()) expect(i % 4 === 0 ? [204] : [200, 409], `${i}: ${a.text}`).toContain(a.status);
    const after = (await c.send("GET", `/api/ai/strategies/${id}`, { token: u.token })).json;
    expect([after.deletedAt !== null, after.enabled]).toEqual([true, false]);
    // A change answered 200 committed before the delete: the row's last update is the delete's.
    const row = (await p.pool.query("SELECT updated_at = deleted_at AS last FROM ai_strategies WHERE strategy_id = $1", [id])).rows[0];
    expect(row.last).toBe(true);
    expect(c.failures).toEqual([]);
  });

  it(`backtests submitted 10 at once at BACKTEST_MAX_OPEN_JOBS_PER_USER ${CAPS.BACKTEST_MAX_OPEN_JOBS_PER_USER}; one cancelled 6 times and deleted 6 times at once`, async () => {
    const u = await c.user("backtests");
    const backtest = (seed: number) => ({ strategy: "sma-crossover", symbols: ["BTCUSDT"], interval: "1d", period: { start: "2024-01-01T00:00:00Z", end: "2024-03-01T00:00:00Z" }, data: { source: "synthetic", seed } });
    const made = await c.burst(10, (i) => c.send("POST", "/api/backtests", { token: u.token, body: backtest(i + 1) }));
    expect(statuses(made)).toEqual([...Array(3).fill(202), ...Array(7).fill(409)]);
    expect((await p.pool.query("SELECT count(*)::int AS n FROM bt_jobs WHERE owner_id = $1 AND status IN ('queued', 'running')", [u.id])).rows[0].n).toBe(3);
    const id = made.find((a) => a.status === 202)!.json.id as string;
    const ops = await c.burst(12, (i) => (i % 2 ? c.send("POST", `/api/backtests/${id}/cancel`, { token: u.token }) : c.send("DELETE", `/api/backtests/${id}`, { token: u.token })));
    for (const [i, a] of ops.entries()) expect(i % 2 ? [200, 404, 409] : [204, 404, 409], `${i}: ${a.text}`).toContain(a.status);
    expect(ops.filter((a, i) => i % 2 && a.status === 200).length).toBeLessThanOrEqual(1);
    expect(ops.filter((a, i) => !(i % 2) && a.status === 204).length).toBeLessThanOrEqual(1);
    expect(c.failures).toEqual([]);
  });
});

describe("payments, billing, notifications and locks", () => {
  const pay = (u: User, paymentMethod: string, key: string, amount = 10_000) => c.send("POST", "/api/payments/intents", { token: u.token, body: { amount, currency: "usd", paymentMethod }, headers: { "idempotency-key": key } });

  it(`payment methods saved 10 at once at PAYMENT_MAX_METHODS_PER_USER ${CAPS.PAYMENT_MAX_METHODS_PER_USER}; one Idempotency-Key charged 15 times at once: one charge; two refunds of 60 % at once: one; one refund key x10: one; a card removed under 10 charges`, async () => {
    const u = await c.user("payer");
    const saved = await c.burst(10, () => c.send("POST", "/api/payments/payment-methods", { token: u.token, body: { paymentMethod: "pm_card_visa" } }));
    expect(count(saved, 201) + count(saved, 200), JSON.stringify(statuses(saved))).toBeLessThanOrEqual(CAPS.PAYMENT_MAX_METHODS_PER_USER);
    for (const a of saved.filter((x) => x.status === 409)) expect(a.json.error.field).toBe("paymentMethod");
    expect((await c.send("GET", "/api/payments/payment-methods", { token: u.token })).json.paymentMethods.length).toBeLessThanOrEqual(CAPS.PAYMENT_MAX_METHODS_PER_USER);

    const key = `race-${randomBytes(6).toString("hex")}`;
    const charges = await c.burst(15, () => pay(u, saved.find((a) => a.status === 201)!.json.paymentMethod, key));
    expect(statuses(charges), charges[0].text).toEqual([...Array(14).fill(200), 201]);
    const intent = charges[0].json;
    expect(new Set(charges.map((a) => a.json.id))).toEqual(new Set([intent.id]));
    expect([...fake.intents.values()].filter((i) => i.metadata.intent_id === intent.id)).toHaveLength(1);
    const refunds = await c.burst(2, (i) => c.send("POST", `/api/payments/intents/${intent.id}/refunds`, { token: admin, body: { amount: 6_000 }, headers: { "idempotency-key": `refund-${i}-${key}` } }));
    expect(statuses(refunds)).toEqual([200, 409]);
    expect(refunds.find((a) => a.status === 409)!.json.error.field).toBe("amount");
    // One refund's key 10 times at once: one refund, at the processor too.
    const again = await c.burst(10, () => c.send("POST", `/api/payments/intents/${intent.id}/refunds`, { token: admin, body: { amount: 1_000 }, headers: { "idempotency-key": `refund-same-${key}` } }));
    for (const a of again) expect([200, 409], a.text).toContain(a.status);
    expect(count(again, 200)).toBeGreaterThanOrEqual(1);
    expect((await p.pool.query("SELECT count(*)::int AS n FROM pay_refunds WHERE intent_id = $1 AND idempotency_key = $2", [intent.id, `refund-same-${key}`])).rows[0].n).toBe(1);
    expect(fake.refunds.filter((r) => r.payment_intent === intent.processorIntentId)).toHaveLength(2);
    // A card removed while 10 charges name it: each charge is made or refused as not saved, never a 5xx.
    const card = saved.find((a) => a.status === 201)!.json.paymentMethod as string;
    const race = await Promise.all([c.send("DELETE", `/api/payments/payment-methods/${card}`, { token: u.token }), ...Array.from({ length: 10 }, (_, i) => pay(u, card, `rm-${i}-${key}`, 2_000))]);
    expect(race[0].status, race[0].text).toBe(204);
    // 429 CHARGES_IN_PROGRESS: past the account's share of the charge-lock connections (half of them), a charge
    // waits for one of its own, and on a loaded host none may end within the wait (session 56).
    for (const a of race.slice(1)) expect([200, 201, 404, 429], a.text).toContain(a.status);
    for (const a of race.slice(1).filter((x) => x.status === 429)) expect(a.json.error.code).toBe("CHARGES_IN_PROGRESS");
    expect(c.failures).toEqual([]);
  });

  it("one plan created 10 times at once: one; a subscription's plan changed and cancelled at once: no 5xx, one outcome; 8 subscriptions at once: one live", async () => {
    const plan = (id: string, amount: number) => ({ id, name: `plan ${id}`, currency: "usd", amount, interval: "month" });
    const basic = `basic-${randomBytes(3).toString("hex")}`;
    const pro = `pro-${randomBytes(3).toString("hex")}`;
    const plans = await c.burst(10, () => c.send("POST", "/api/billing/plans", { token: admin, body: plan(basic, 1_000) }));
    expect(statuses(plans)).toEqual([201, ...Array(9).fill(409)]);
    for (const a of plans.filter((x) => x.status === 409)) expect([a.json.error.code, a.json.error.field]).toEqual(["PLAN_EXISTS", "id"]);
    expect((await c.send("POST", "/api/billing/plans", { token: admin, body: plan(pro, 3_000) })).status).toBe(201);

    let last: { u: User; sub: { id: string } } | undefined;
    for (let round = 0; round < 3; round++) {
      const u = await c.user("subscriber");
      const pm = (await c.send("POST", "/api/payments/payment-methods", { token: u.token, body: { paymentMethod: "pm_card_visa" } })).json.paymentMethod as string;
      const subs = await c.burst(8, () => c.send("POST", "/api/billing/subscriptions", { token: u.token, body: { planId: basic, paymentMethod: pm } }));
      for (const a of subs) expect([201, 409], a.text).toContain(a.status);
      const live = async () => (await c.send("GET", "/api/billing/subscriptions", { token: u.token })).json.subscriptions.filter((s: { status: string }) => s.status !== "canceled");
      expect(await live()).toHaveLength(1);
      const [sub] = await live();
      const ops = await c.burst(10, (i) => (i % 2 ? c.send("POST", `/api/billing/subscriptions/${sub.id}/plan`, { token: u.token, body: { planId: i % 4 === 1 ? pro : basic } }) : c.send("POST", `/api/billing/subscriptions/${sub.id}/cancel`, { token: u.token, body: { atPeriodEnd: false } })));
      for (const a of ops) expect([200, 409], `round ${round}: ${a.text}`).toContain(a.status);
      const [after] = (await c.send("GET", "/api/billing/subscriptions", { token: u.token })).json.subscriptions.filter((s: { id: string }) => s.id === sub.id);
      expect(after.status).toBe("canceled");
      last = { u, sub };
    }
    // A card change and a cancellation at the period's end, each 6 times at once: every one answered, both kept.
    {
      const u = await c.user("card-change");
      const save = async () => (await c.send("POST", "/api/payments/payment-methods", { token: u.token, body: { paymentMethod: "pm_card_visa" } })).json.paymentMethod as string;
      const [one, two] = [await save(), await save()];
      const sub = (await c.send("POST", "/api/billing/subscriptions", { token: u.token, body: { planId: basic, paymentMethod: one } })).json;
      const ops = await c.burst(12, (i) => (i % 2 ? c.send("POST", `/api/billing/subscriptions/${sub.id}/payment-method`, { token: u.token, body: { paymentMethod: two } }) : c.send("POST", `/api/billing/subscriptions/${sub.id}/cancel`, { token: u.token, body: { atPeriodEnd: true } })));
      expect(statuses(ops), ops.map((a) => a.text).join(" ").slice(0, 300)).toEqual(Array(12).fill(200));
      const [after] = (await c.send("GET", "/api/billing/subscriptions", { token: u.token })).json.subscriptions;
      expect([after.cancelAtPeriodEnd, after.paymentMethod]).toEqual([true, two]);
    }
    // The race above deadlocked (a 503) when the first invoice's payment event was applied during it:
    // the event locked the invoice, then the subscription. The lock order itself, deterministically: a
    // transaction holding the subscription (as a cancel does) keeps a locked read of its invoice waiting.
    const invoice = (await c.send("GET", "/api/billing/invoices", { token: last!.u.token })).json.invoices[0].id as string;
    const repo = new BillingRepo(p.services.get("billing-service")!.app.pg);
    const holder = await p.pool.connect();
    let read = false;
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM bil_subscriptions WHERE subscription_id = $1 FOR UPDATE", [last!.sub.id]);
      const holderPid = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      const locked = repo.pg.transaction(async (tx) => {
        await repo.invoice(invoice, tx, true);
        read = true;
      });
      // The locked read is under way and waits for the holder's lock (PostgreSQL says who blocks it).
      await waitFor("the invoice's locked read waiting for the held subscription", async () =>
        (await p.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) AND strpos(query, 'FROM bil_invoices WHERE invoice_id = $1) FOR UPDATE') > 0", [holderPid])).rows[0].n === 1, { timeoutMs: PATIENCE_MS, intervalMs: 20 });
      expect(read, "the invoice was locked while its subscription was held").toBe(false);
      await holder.query("UPDATE bil_invoices SET updated_at = now() WHERE invoice_id = $1", [invoice]);
      await holder.query("COMMIT");
      await locked;
      expect(read).toBe(true);
    } finally {
      await holder.query("ROLLBACK").catch(() => undefined);
      holder.release();
    }
    expect(c.failures).toEqual([]);
  });

  it(`notification preferences written 20 times at once: each 200, and the stored ones are one write's, whole; a webhook deleted 10 times at once: one 204; 8 created at once at NOTIFY_MAX_WEBHOOKS ${CAPS.NOTIFY_MAX_WEBHOOKS}`, async () => {
    const u = await c.user("prefs");
    const zones = ["UTC", "Europe/Paris", "Asia/Tokyo", "America/New_York"];
    const write = (i: number) => ({ email: null, telegramChatId: null, timeZone: zones[i % 4], quietHours: { start: `0${i % 10}:00`, end: `1${i % 10}:30` } });
    const answers = await c.burst(20, (i) => c.send("PUT", "/api/notifications/preferences", { token: u.token, body: write(i) }));
    expect(statuses(answers)).toEqual(Array(20).fill(200));
    const now = (await c.send("GET", "/api/notifications/preferences", { token: u.token })).json;
    expect(Array.from({ length: 20 }, (_, i) => write(i)).some((w) => w.timeZone === now.timeZone && JSON.stringify(w.quietHours) === JSON.stringify(now.quietHours))).toBe(true);
    const hook = (await c.send("POST", "/api/notifications/webhooks", { token: u.token, body: { url: "https://hooks.example.com/race" } })).json.id as string;
    const deletes = await c.burst(10, () => c.send("DELETE", `/api/notifications/webhooks/${hook}`, { token: u.token }));
    expect(statuses(deletes)).toEqual([204, ...Array(9).fill(404)]);
    const hooks = await c.burst(8, (i) => c.send("POST", "/api/notifications/webhooks", { token: u.token, body: { url: `https://hooks.example.com/race/${i}` } }));
    expect(statuses(hooks)).toEqual([...Array(CAPS.NOTIFY_MAX_WEBHOOKS).fill(201), ...Array(8 - CAPS.NOTIFY_MAX_WEBHOOKS).fill(409)]);
    expect(c.failures).toEqual([]);
  });

  it("a hub lock acquired by 20 owners at once: one holder, 19 409 LOCKED; an instance's first heartbeat x10: one 201; one Idempotency-Key 10 times at once: one acquisition, the same token", async () => {
    const name = `race-${randomBytes(3).toString("hex")}`;
    const answers = await c.burst(20, (i) => c.send("POST", `/api/hub/locks/${name}/acquire`, { token: admin, body: { owner: `worker ${i}`, ttlMs: 60_000 } }));
    expect(statuses(answers)).toEqual([200, ...Array(19).fill(409)]);
    const holder = answers.find((a) => a.status === 200)!.json.owner;
    for (const a of answers.filter((x) => x.status === 409)) expect([a.json.error.code, a.json.holder.owner]).toEqual(["LOCKED", holder]);
    // An instance's first heartbeat sent 10 times at once: registered once (one 201), one registeredAt.
    const beats = await c.burst(10, () => c.send("PUT", `/api/hub/instances/race-svc/${name}`, { token: admin, body: { version: "1.0.0", address: "10.0.0.9:8080", health: "healthy" } }));
    expect(statuses(beats)).toEqual([...Array(9).fill(200), 201]);
    expect(new Set(beats.map((a) => a.json.registeredAt)).size).toBe(1);
    const other = `${name}-k`;
    const idem = { "idempotency-key": `race-${randomBytes(6).toString("hex")}` };
    const same = await c.burst(10, () => c.send("POST", `/api/hub/locks/${other}/acquire`, { token: admin, body: { owner: "one worker", ttlMs: 60_000 }, headers: idem }));
    expect(statuses(same)).toEqual(Array(10).fill(200));
    expect(new Set(same.map((a) => a.json.token)).size).toBe(1);
    expect(c.failures).toEqual([]);
  });
});
