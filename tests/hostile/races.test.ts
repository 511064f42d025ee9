/**
 * The race suite (session 49): the SAME client sending the same or conflicting writes at once, on
 * separate connections, through the gateway against real PostgreSQL, Redis, Kafka and ClickHouse
 * (earlier suites sent most of these one after another, or to one service's classes):
 * - one dedupe key many times at once: one effect, the same answer (or a clear 409), never two rows;
 * - conflicting transitions at once: cancels, refunds past the charge, a plan change against a
 *   cancellation, delete against update (strategy, configuration key, API key, webhook), a password
 *   change against logins, registrations of one e-mail in case variants, locks, preference writes;
 * - credentials ended while requests are in flight (an API key revoked, an account disabled);
 * - limits passed by sending N at once: wrong API keys per address, requests per user, and the
 *   per-user caps (strategies, open backtest jobs, payment methods, webhooks).
 * Every answer is judged by ./oracle.ts (no 5xx, no internal details); a lost race is a 4xx naming
 * the conflict. One platform for all of them (./race-rig.ts sends).
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createService, type Service } from "../../services/src/kit";
import { registry } from "../../services/src/registry";
import { useServersWith } from "../harness/shared";
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
    const order = { symbol: SYMBOL, side: "buy", type: "limit", quantity: "0.01", limitPrice: "50" };
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

  it(`60 requests of one user at once at RATE_LIMIT_MAX_REQUESTS ${CAPS.RATE_LIMIT_MAX_REQUESTS}: exactly that many pass`, async () => {
    const u = await c.user("flood");
    const answers = await c.burst(60, () => c.send("GET", "/api/users/me", { token: u.token, ip: freshAddress() }, limitedUrl));
    expect(count(answers, 200)).toBe(CAPS.RATE_LIMIT_MAX_REQUESTS);
    expect(count(answers, 429)).toBe(60 - CAPS.RATE_LIMIT_MAX_REQUESTS);
    expect(c.failures).toEqual([]);
  });
});
