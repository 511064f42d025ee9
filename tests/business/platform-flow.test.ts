/**
 * The business tier end to end on real servers (PostgreSQL, ClickHouse, Redis, and a Kafka of this
 * file alone, so the platform-wide figures, MRR above all, are exactly this test's): a user
 * subscribes through the gateway, the card processor (tests/fakes/card-processor.ts) confirms by a
 * signed webhook, the invoice is paid, the ledger balances, the user is told by e-mail (a real SMTP
 * server on loopback) and by a signed webhook, trades on the paper exchange, and
 * performance-analytics shows the trade's PnL, usage-monitoring the user's API usage and
 * revenue-analytics the platform's MRR, each with the number worked out here.
 */
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg, startKafka, startRedis, type KafkaServer, type RedisServer } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { testIdentities, type TestIdentities } from "../helpers/identity";
import { ensureAccount } from "../helpers/accounts";
import { registry } from "../../services/src/registry";
import { D } from "../../services/src/trading/decimal";
import { SyntheticSource } from "../../services/src/trading/marketdata/synthetic";
import type { Bar } from "../../services/src/trading/types";
import { FakeCardProcessor } from "../fakes/card-processor";
import { http, waitUntil } from "../trading/e2e-helpers";
import { migrateAll } from "../helpers/schemas";

const srv = useServers("postgres", "clickhouse");
const run = randomBytes(3).toString("hex");
const SYMBOL = "BTCUSDT";
const fake = new FakeCardProcessor();
const JWT_SECRET = randomBytes(64).toString("hex");
const services: Service<any>[] = [];
const mails: { to: string[]; raw: string }[] = [];
const hooks: { body: any; verified: boolean }[] = [];
let hookSecret = "";
let kafka: KafkaServer;
let redis: RedisServer;
let smtp: SMTPServer;
let hookServer: Server;
let pool: InstanceType<typeof pg.Pool>;
let gw: string;
let bars: Bar[];

// The gateway accepts a token only for a user whose state it knows: recorded as user-management
// would, with the account (billing's cycle charges, and notification-service tells, only a user who has one).
let identities: TestIdentities | undefined;
const token = async (userId: string, role: "trader" | "admin" = "trader") => {
  identities ??= testIdentities(redis.url, JWT_SECRET);
  await ensureAccount(pool, userId);
  return identities.token(userId, role);
};

beforeAll(async () => {
  smtp = new SMTPServer({
    secure: false, disabledCommands: ["STARTTLS", "AUTH"], logger: false,
    onData: (stream, session, cb) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString("utf8") });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, "127.0.0.1", r));
  hookServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const expected = `v1=${createHmac("sha256", hookSecret).update(`${req.headers["x-notification-timestamp"]}.${body}`).digest("hex")}`;
      hooks.push({ body: JSON.parse(body), verified: req.headers["x-notification-signature"] === expected });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, "127.0.0.1", r));
  await fake.start();
  fake.mode = "async";
  [kafka, redis] = await Promise.all([startKafka({ readyTimeoutMs: 600_000 }), startRedis()]);

  const env: Record<string, string> = {
    ...srv.env, ...kafka.env, DRAGONFLY_URL: redis.url, LOG_LEVEL: process.env.BIZ_LOG_LEVEL ?? "silent", JWT_SECRET,
    KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500", RATE_LIMIT_MAX_REQUESTS: "100000",
    ...fake.env,
    PAYMENT_RECONCILE_INTERVAL_MS: "0", PAYMENT_OUTBOX_INTERVAL_MS: "50", BILLING_OUTBOX_INTERVAL_MS: "50", BILLING_CYCLE_INTERVAL_MS: "0",
    OM_OUTBOX_INTERVAL_MS: "50", TE_OUTBOX_INTERVAL_MS: "50", PAPER_TAKER_FEE_BPS: "10", PAPER_SLIPPAGE_BPS: "5",
    MARKET_DATA_SOURCE: "synthetic", MARKET_SYMBOLS: "ETHUSDT", SYNTHETIC_EMIT_MS: "1000", CH_FLUSH_MS: "200",
    SMTP_HOST: "127.0.0.1", SMTP_PORT: String((smtp.server.address() as AddressInfo).port), SMTP_REQUIRE_TLS: "false",
    NOTIFY_WEBHOOK_ALLOW_PRIVATE: "true", NOTIFY_WORKER_INTERVAL_MS: "100", PERF_ROLLUP_INTERVAL_MS: "0",
  };
  pool = await migrateAll(env);

  const urls: Record<string, string> = {};
  const order = ["payment-service", "usage-monitoring", "billing-service", "notification-service", "revenue-analytics", "performance-analytics", "data-bridge", "order-management", "trading-engine", "api-gateway"];
  for (const name of order) {
    const s = await createService(await registry[name](), { env: { ...env, ...urls }, defaultMetrics: false });
    services.push(s);
    urls[`SERVICE_${name.toUpperCase().replace(/-/g, "_")}_URL`] = await s.listen({ port: 0, host: "127.0.0.1" });
  }
  fake.webhookUrl = `${urls.SERVICE_PAYMENT_SERVICE_URL}/webhooks/processor`;
  gw = urls.SERVICE_API_GATEWAY_URL;
  const adminToken = await token(randomUUID(), "admin");
  expect((await http("POST", `${gw}/api/billing/plans`, { token: adminToken, body: { id: `pro-${run}`, name: "Pro", currency: "usd", amount: 4900, interval: "month" } })).status).toBe(201);
  // Prices: 30 one-minute bars ending at the current minute, through data-bridge (Kafka -> engine, ClickHouse candles).
  const minute = Math.floor(Date.now() / 60_000) * 60_000;
  bars = await new SyntheticSource({ seed: `flow-${run}`, startPrices: { [SYMBOL]: "100" }, origin: minute - 30 * 60_000 }).history(SYMBOL, "1m", { limit: 30 });
  expect((await http("POST", `${urls.SERVICE_DATA_BRIDGE_URL}/internal/bars`, { body: { bars, flush: true } })).status).toBe(200);
  await waitUntil("engine saw the last bar", async () => (await http("GET", `${urls.SERVICE_TRADING_ENGINE_URL}/last/${SYMBOL}`)).body.bar?.openTime === bars[29].openTime, 180_000);
}, 900_000);

afterAll(async () => {
  await identities?.close();
  for (const s of services.reverse()) await s.close().catch(() => undefined);
  await pool?.end();
  await Promise.all([kafka?.stop(), redis?.stop(), fake.stop()]);
  await new Promise<void>((r) => (smtp ? smtp.close(() => r()) : r()));
  await new Promise<void>((r) => (hookServer ? hookServer.close(() => r()) : r()));
}, 120_000);

describe("the business tier end to end", () => {
  it("subscribe, pay by signed webhook, get notified, trade, and see PnL, usage and MRR", async () => {
    // Usage from a fixed start: the default, the first of this UTC month, would lose the earlier
    // requests of a run that crosses midnight on the 1st.
    const since = encodeURIComponent(new Date(Date.now() - 60_000).toISOString());
    const userId = randomUUID();
    const tok = await token(userId);
    const adminTok = await token(randomUUID(), "admin");
    let requests = 0; // this user's requests through the gateway, all served (< 500)
    const api = async (method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
      const r = await http(method, `${gw}/api${path}`, { token: tok, body, headers });
      requests++;
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBeLessThan(500);
      return r;
    };

    const email = `flow-${run}@example.test`;
    expect((await api("PUT", "/notifications/preferences", { email, telegramChatId: null })).status).toBe(200);
    // Notices go to the address once it is confirmed with the code mailed to it.
    const code = await waitUntil("confirmation code", async () => mails.filter((m) => m.to.includes(email)).map((m) => /code is (\d{6})\./.exec(m.raw)?.[1]).find(Boolean), 120_000);
    expect((await api("POST", "/notifications/preferences/email/verify", { code })).body).toEqual({ emailVerified: true });
    const hook = await api("POST", "/notifications/webhooks", { url: `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/in` });
    hookSecret = hook.body.secret;

    // Subscribe; the processor confirms the charge by a signed webhook; the invoice is paid.
    // Only a card saved to the subscriber is charged: saved first (attached to the user's processor customer).
    const card = await api("POST", "/payments/payment-methods", { paymentMethod: "pm_card_visa" });
    expect(card.status, JSON.stringify(card.body)).toBe(201);
    expect((await api("POST", "/billing/subscriptions", { planId: `pro-${run}`, paymentMethod: card.body.paymentMethod })).status).toBe(201);
    await waitUntil("processor got the charge", async () => [...fake.intents.values()].find((i) => i.metadata.user_id === userId), 120_000);
    await fake.settle((i) => i.metadata.user_id === userId);
    await waitUntil("invoice paid", async () => (await pool.query("SELECT status FROM bil_invoices WHERE user_id = $1", [userId])).rows[0]?.status === "paid", 120_000);
    expect((await api("GET", "/billing/subscriptions")).body.subscriptions[0].status).toBe("active");
    // The ledger balances: every journal sums to zero, the customer owes nothing more.
    expect((await pool.query("SELECT coalesce(sum(amount), 0)::text AS total FROM pay_ledger_entries")).rows[0].total).toBe("0");
    const ledger = await http("GET", `${gw}/api/payments/ledger?account=customer:${userId}`, { token: adminTok });
    expect(ledger.body.accounts).toEqual([{ account: `customer:${userId}`, currency: "usd", balance: -4900 }]);
    // Told by e-mail (real SMTP) and by a signed webhook.
    await waitUntil("invoice e-mail", async () => mails.some((m) => m.to.includes(email) && /^Subject: Invoice paid: USD 49\.00\r?$/m.test(m.raw)), 120_000);
    await waitUntil("invoice webhook", async () => hooks.some((h) => h.body.type === "invoice.paid"), 120_000);
    expect(hooks.every((h) => h.verified)).toBe(true);
    expect(hooks.find((h) => h.body.type === "invoice.paid")!.body.data).toMatchObject({ amountPaid: 4900, currency: "usd", status: "active" });

    // Trades: a market buy of 2 on the paper exchange.
    const placed = await api("POST", "/orders", { symbol: SYMBOL, side: "buy", type: "market", quantity: "2", clientOrderId: `flow:${run}` }, { "idempotency-key": `flow-${run}` });
    expect(placed.status).toBe(201);
    const filled = await waitUntil("filled", async () => {
      const o = (await api("GET", `/orders/${placed.body.orderId}`)).body;
      return o.status === "filled" ? o : undefined;
    }, 120_000);
    await waitUntil("fill e-mail", async () => mails.some((m) => m.to.includes(email) && m.raw.includes(`Your order ${placed.body.orderId} was filled`)), 120_000);

    // PnL: 2 x (the day's last close - the fill price) - the fee, on the default capital base 100 000.
    const pnl = D(bars[29].close).minus(filled.avgFillPrice).mul(2).minus(filled.fees).toNumber();
    const perf = await waitUntil("performance rolled up", async () => {
      await http("POST", `${gw}/api/performance/rollup`, { token: adminTok });
      const s = (await api("GET", "/performance")).body;
      return s.total?.trades === 1 ? s : undefined;
    }, 120_000, 1000);
    expect(perf.total.totalPnl).toBeCloseTo(pnl, 6);
    expect(perf.total.exposure).toBeCloseTo(2 * Number(bars[29].close), 6);
    expect(perf.strategies.map((s: any) => s.strategy)).toEqual(["flow"]);

    // API usage: every request this user made went through the gateway and is counted (waiting through
    // usage-monitoring's own endpoint counts too: compare against the count including this call).
    const usage = await waitUntil("usage ingested", async () => {
      const rows = (await http("GET", `${gw}/api/usage?from=${since}`, { token: tok })).body.usage as any[];
      requests++;
      const n = rows.reduce((a, r) => a + r.requests, 0);
      return n === requests - 1 ? rows : undefined;
    }, 120_000, 1000);
    const byRoute = Object.fromEntries(usage.map((r: any) => [r.route, r.requests]));
    expect(byRoute.notifications).toBe(3); // preferences, the e-mail address's confirmation, a webhook
    expect(byRoute.billing).toBe(2);
    expect(byRoute.orders).toBeGreaterThanOrEqual(2);

    // The platform's MRR: this one subscription, 4900 a month.
    const revenue = await waitUntil("MRR", async () => {
      const r = (await http("GET", `${gw}/api/revenue`, { token: adminTok })).body.currencies?.[0];
      return r?.mrr === 4900 && r.collected === 4900 ? r : undefined;
    }, 120_000, 1000);
    expect(revenue).toMatchObject({ currency: "usd", mrr: 4900, arr: 58_800, payingCustomers: 1, arpu: 4900, churnRate: 0, ltv: null, collected: 4900, netRevenue: 4900 });
  }, 600_000);
});
