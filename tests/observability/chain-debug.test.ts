/**
 * Tracing end to end on real servers (PostgreSQL, Redis, Kafka, ClickHouse): the api-gateway,
 * billing-service and payment-service run as their own processes (as deployed: tracing is per
 * process) exporting OTLP to chain-debug. A subscription request goes gateway -> billing-service ->
 * payment-service (HTTP) -> card processor; payment-service publishes payments.events (outbox ->
 * Kafka, trace context in the headers) which billing-service consumes. The subscription row vanishes
 * while the processor answers (a concurrent delete, injected at the fake processor), so
 * billing-service fails with a TypeError: a 500 through the gateway. chain-debug must show that
 * request's path across every service, the Kafka consumer's work linked to it, one error group
 * counting both identical failures, 403 to non-admins, and no credential in anything it stored.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, pg, startClickHouse, startKafka, startPostgres, startRedis, type ClickHouseServer, type KafkaServer, type PostgresServer, type RedisServer } from "../harness";
import { freePort } from "../harness/proc";
import { createService, type Service } from "../../services/src/kit";
import { ensureAccount } from "../helpers/accounts";
import { testIdentities, type TestIdentities } from "../helpers/identity";
import { createClickHouse } from "../../services/src/kit/datastores";
import { ensureKafkaTopics, runClickHouseMigrations, runPostgresMigrations } from "../../services/src/migrations";
import chainDebug from "../../services/src/services/chain-debug";
import { FakeCardProcessor } from "../fakes/card-processor";
import { ChildService, http, waitUntil } from "../trading/e2e-helpers";

// Private servers with generous start bounds (a loaded machine): this file's data is its own.
const srv = { env: {} as Record<string, string> };
let kafka: KafkaServer;
let postgres: PostgresServer;
let clickhouse: ClickHouseServer;
const run = randomBytes(3).toString("hex");
const fake = new FakeCardProcessor();
const JWT_SECRET = randomBytes(64).toString("hex");
const QUERY_SECRET = `qs${randomBytes(12).toString("hex")}`;
const COOKIE_SECRET = `ck${randomBytes(12).toString("hex")}`;
let redis: RedisServer;
let pool: InstanceType<typeof pg.Pool>;
let debug: Service<any>;
let debugPort: number;
const children: ChildService[] = [];
let gw: string;
let adminToken: string;
let ch: ReturnType<typeof createClickHouse>;
const victims = new Set<string>();
const tokens: string[] = [];
let identities: TestIdentities | undefined;

const token = async (userId: string, role: "trader" | "admin" = "trader") => {
  // The gateway accepts a token only for a user whose state it knows: recorded as user-management would.
  identities ??= testIdentities(redis.url, JWT_SECRET);
  const t = await identities.token(userId, role);
  tokens.push(t);
  return t;
};

beforeAll(async () => {
  await fake.start();
  [redis, kafka, postgres, clickhouse] = await Promise.all([
    startRedis({ readyTimeoutMs: 300_000 }),
    startKafka({ readyTimeoutMs: 600_000 }),
    startPostgres({ readyTimeoutMs: 600_000 }),
    startClickHouse({ readyTimeoutMs: 600_000 }),
  ]);
  srv.env = { ...postgres.env, ...clickhouse.env };
  const base: Record<string, string> = {
    ...srv.env,
    ...kafka.env,
    DRAGONFLY_URL: redis.url,
    LOG_LEVEL: process.env.TRACE_LOG_LEVEL ?? "warn",
    JWT_SECRET,
    KAFKA_SESSION_TIMEOUT_MS: "6000",
    KAFKA_HEARTBEAT_MS: "500",
    RATE_LIMIT_MAX_REQUESTS: "100000",
  };
  pool = new pg.Pool({ connectionString: base.POSTGRES_URL, max: 4 });
  await runPostgresMigrations(pool);
  ch = createClickHouse({ CLICKHOUSE_URL: base.CLICKHOUSE_URL, CLICKHOUSE_USER: base.CLICKHOUSE_USER, CLICKHOUSE_PASSWORD: base.CLICKHOUSE_PASSWORD, CLICKHOUSE_DATABASE: base.CLICKHOUSE_DATABASE });
  await runClickHouseMigrations(ch);
  const admin = new kafkajs.Kafka({ brokers: base.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  await ensureKafkaTopics(admin);
  await admin.disconnect();

  // chain-debug in this process (it does not trace itself); the traced services as processes.
  debugPort = await freePort();
  debug = await createService(chainDebug, { env: base, defaultMetrics: false });
  await debug.listen({ port: debugPort, host: "127.0.0.1" });
  const traced = { ...base, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${debugPort}/internal/otlp/v1/traces` };
  const [payPort, billPort, gwPort] = [await freePort(), await freePort(), await freePort()];
  const urls = {
    SERVICE_PAYMENT_SERVICE_URL: `http://127.0.0.1:${payPort}`,
    SERVICE_BILLING_SERVICE_URL: `http://127.0.0.1:${billPort}`,
    SERVICE_CHAIN_DEBUG_URL: `http://127.0.0.1:${debugPort}`,
    SERVICE_USAGE_MONITORING_URL: "http://127.0.0.1:9", // not running: billing only needs it for renewals
  };
  const payment = new ChildService("payment-service", payPort, {
    ...traced,
    ...urls,
    ...fake.env,
    PAYMENT_RECONCILE_INTERVAL_MS: "0",
    PAYMENT_OUTBOX_INTERVAL_MS: "50",
  });
  const billing = new ChildService("billing-service", billPort, { ...traced, ...urls, BILLING_OUTBOX_INTERVAL_MS: "50", BILLING_CYCLE_INTERVAL_MS: "0", BILLING_CONSUMER_GROUP: `billing-trace-${run}` });
  const gateway = new ChildService("api-gateway", gwPort, { ...traced, ...urls });
  children.push(payment, billing, gateway);
  await Promise.all(children.map((c) => c.start(900_000))); // tsx compiles each service at start: slow on a loaded machine
  gw = gateway.url;
  fake.webhookUrl = `${payment.url}/webhooks/processor`;
  adminToken = await token(randomUUID(), "admin");
  const groups = new kafkajs.Kafka({ brokers: base.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
  await groups.connect();
  await waitUntil("billing consumer group stable", async () => (await groups.describeGroups([`billing-trace-${run}`])).groups.every((g) => g.state === "Stable" && g.members.length > 0), 240_000, 500);
  await groups.disconnect();
  expect((await http("POST", `${gw}/api/billing/plans`, { token: adminToken, body: { id: `pro-${run}`, name: "Pro", currency: "usd", amount: 3000, interval: "month" } })).status).toBe(201);
  // The subscription of a victim vanishes while the processor answers (a concurrent delete).
  fake.beforeAnswer = async (intent) => {
    const userId = intent.metadata.user_id;
    if (!victims.has(userId)) return;
    await pool.query("DELETE FROM bil_invoice_lines WHERE invoice_id IN (SELECT invoice_id FROM bil_invoices WHERE user_id = $1)", [userId]);
    await pool.query("DELETE FROM bil_invoices WHERE user_id = $1", [userId]);
    await pool.query("DELETE FROM bil_subscriptions WHERE user_id = $1", [userId]);
  };
}, 900_000);

afterAll(async () => {
  await identities?.close();
  await Promise.all(children.map((c) => c.stop()));
  await debug?.close();
  await ch?.close();
  await pool?.end();
  await redis?.stop();
  await kafka?.stop();
  await postgres?.stop();
  await clickhouse?.stop();
  if (fake.url) await fake.stop();
});

const api = (method: string, path: string, tok: string, body?: unknown, headers?: Record<string, string>) => http(method, `${gw}/api${path}`, { token: tok, body, headers });

/** The gateway's request ids of the requests that sent QUERY_SECRET in their query. */
const querySecretRequestIds: string[] = [];

/** A subscription whose row vanishes mid-request: billing-service answers 500 through the gateway. */
async function failingSubscribe(): Promise<{ requestId: string; userToken: string }> {
  const userId = randomUUID();
  victims.add(userId);
  // billing charges only an account that exists and is enabled (session 40's race hunt): the charge is what fails here.
  await ensureAccount(pool, userId);
  const userToken = await token(userId);
  const clientRequestId = `trace-test-${randomUUID()}`;
  // Only a card saved to the subscriber is taken (payment-service's payment methods): saved first, in a trace of its own.
  const card = await api("POST", "/payments/payment-methods", userToken, { paymentMethod: "pm_card_visa" });
  expect(card.status, JSON.stringify(card.body)).toBe(201);
  const subscription = { planId: `pro-${run}`, paymentMethod: card.body.paymentMethod };
  // A secret in the query: billing's POST /subscriptions takes no parameter, so it is a 400 naming it
  // (kit query-parameters.ts), and its spans still record the query, masked ("stored no credential").
  const refused = await api("POST", `/billing/subscriptions?token=${QUERY_SECRET}`, userToken, subscription);
  expect(refused.status, JSON.stringify(refused.body)).toBe(400);
  expect(refused.body.error).toMatchObject({ code: "VALIDATION_ERROR", field: "token" });
  querySecretRequestIds.push(refused.headers.get("x-request-id") ?? "");
  const r = await api("POST", "/billing/subscriptions", userToken, subscription, { "x-request-id": clientRequestId, cookie: `session=${COOKIE_SECRET}` });
  expect(r.status).toBe(500);
  // The gateway's own request id (session 41: a client's x-request-id is only passed on as x-client-request-id).
  const requestId = r.headers.get("x-request-id") ?? "";
  expect(requestId).not.toBe(clientRequestId);
  expect(r.body.error).toMatchObject({ code: "INTERNAL_ERROR", requestId });
  return { requestId, userToken };
}

const traceOf = async (requestId: string): Promise<string> =>
  waitUntil(`trace of ${requestId}`, async () => (await api("GET", `/debug/requests/${requestId}`, adminToken)).body.traceIds?.[0], 120_000, 500);

function flatten(nodes: any[]): any[] {
  return nodes.flatMap((n) => [n, ...flatten(n.children)]);
}

describe("chain-debug: a failing request across services", () => {
  let first: { requestId: string; traceId: string; fingerprint: string };

  it("shows the request's spans from the gateway through every service, the Kafka consumer linked, the error grouped", async () => {
    const { requestId } = await failingSubscribe();
    const traceId = await traceOf(requestId);
    // Spans arrive per process in batches: wait until every hop and the consumer's linked work are in.
    const trace = await waitUntil(
      "the whole path in chain-debug",
      async () => {
        const t = (await api("GET", `/debug/traces/${traceId}`, adminToken)).body;
        const linked = (t.linked ?? []).flatMap((l: any) => flatten(l.roots));
        // Each hop's server span, which ends (and is exported) after the spans under it: until it
        // arrives, those show as roots (a CI run on a loaded machine read 3 roots).
        const hops = ["api-gateway", "billing-service", "payment-service"];
        const ok =
          hops.every((s) => t.services?.includes(s)) &&
          hops.every((s) => flatten(t.roots ?? []).some((n: any) => n.service === s && n.kind === "server")) &&
          flatten(t.roots).some((n: any) => n.kind === "producer" && n.service === "payment-service") &&
          linked.some((n: any) => n.service === "billing-service" && n.kind === "consumer" && n.name === "process payments.events");
        return ok ? t : undefined;
      },
      120_000,
      500,
    );
    const spans = flatten(trace.roots);
    // One root: the gateway's server span; everything else hangs under it.
    expect(trace.roots).toHaveLength(1);
    expect(trace.roots[0]).toMatchObject({ service: "api-gateway", kind: "server", httpStatus: 500, status: "error", requestId });
    const billingServer = spans.find((n) => n.service === "billing-service" && n.kind === "server");
    expect(billingServer).toMatchObject({ name: "POST /subscriptions", httpStatus: 500, status: "error" });
    const exception = billingServer.events.find((e: any) => e.name === "exception");
    expect(exception.attributes["exception.type"]).toBe("TypeError");
    // (billing asks payment-service first whether the card is the subscriber's: a server span of its own)
    expect(spans.some((n) => n.service === "payment-service" && n.kind === "server" && n.name === "GET /internal/payment-methods/:paymentMethod")).toBe(true);
    const paymentServer = spans.find((n) => n.service === "payment-service" && n.kind === "server" && n.name === "POST /internal/intents");
    expect(paymentServer).toBeDefined();
    // payment-service's server span sits under billing-service's outgoing call, which sits under billing's server span.
    const parentOf = (n: any) => spans.find((p) => p.spanId === n.parentSpanId);
    expect(parentOf(paymentServer)).toMatchObject({ service: "billing-service", kind: "client" });
    expect(spans.some((n) => n.service === "billing-service" && (n.attributes["db.system.name"] ?? n.attributes["db.system"]) === "postgresql")).toBe(true);
    // The consumer's batch links to payment-service's producer span of this trace.
    const producer = spans.find((n) => n.kind === "producer" && n.service === "payment-service");
    const consumer = trace.linked.flatMap((l: any) => flatten(l.roots)).find((n: any) => n.kind === "consumer" && n.service === "billing-service");
    expect(consumer.links).toContainEqual({ trace_id: traceId, span_id: producer.spanId });

    const groups = (await api("GET", "/debug/errors", adminToken)).body.groups;
    const group = groups.find((g: any) => g.lastTraceId === traceId);
    expect(group).toMatchObject({ type: "TypeError", count: 1, services: ["billing-service"] });
    expect(group.message).toMatch(/subscription_id/);
    first = { requestId, traceId, fingerprint: group.fingerprint };
  }, 300_000);

  it("a second identical failure increments the same group", async () => {
    const { requestId } = await failingSubscribe();
    const traceId = await traceOf(requestId);
    expect(traceId).not.toBe(first.traceId);
    const group = await waitUntil(
      "second occurrence grouped",
      async () => ((await api("GET", `/debug/errors/${first.fingerprint}`, adminToken)).body as any).count === 2 ? (await api("GET", `/debug/errors/${first.fingerprint}`, adminToken)).body : undefined,
      120_000,
      500,
    );
    expect(group.lastTraceId).toBe(traceId);
    expect(Date.parse(group.lastSeen)).toBeGreaterThan(Date.parse(group.firstSeen));
    expect(group.occurrences.map((o: any) => o.traceId).sort()).toEqual([first.traceId, traceId].sort());
    const all = (await api("GET", "/debug/errors", adminToken)).body.groups.filter((g: any) => g.fingerprint === first.fingerprint);
    expect(all).toHaveLength(1);
  }, 300_000);

  it("finds a group by its fingerprint however many newer groups there are", async () => {
    const now = Date.now();
    const at = new Date(now).toISOString();
    await ch.insert("debug_errors", Array.from({ length: 1_001 }, (_, i) => ({
      date: at.slice(0, 10), at: at.slice(0, 19).replace("T", " "), at_us: now * 1000 + i, fingerprint: randomBytes(16).toString("hex"), service: "probe",
      trace_id: randomBytes(16).toString("hex"), span_id: randomBytes(8).toString("hex"), event_index: 0, type: "Error", message: `newer ${i}`, stack: "", span_name: "probe",
    })));
    const r = await api("GET", `/debug/errors/${first.fingerprint}`, adminToken);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ fingerprint: first.fingerprint, count: 2 });
    expect((await api("GET", `/debug/errors/${"0".repeat(32)}`, adminToken)).status).toBe(404);
  });

  it("is admin-only through the gateway", async () => {
    const trader = await token(randomUUID());
    for (const path of ["/debug/errors", `/debug/traces/${first.traceId}`, "/debug/traces", `/debug/requests/${first.requestId}`]) {
      const r = await api("GET", path, trader);
      expect(r.status, path).toBe(403);
      expect(r.body.error.code).toBe("FORBIDDEN");
    }
    expect((await http("GET", `${gw}/api/debug/errors`)).status).toBe(401);
    // The intake is internal: the gateway never proxies it.
    expect((await api("POST", "/debug/internal/otlp/v1/traces", adminToken, { resourceSpans: [] })).status).toBe(404);
  });

  it("stored no credential: tokens, keys, passwords, query secrets, cookies", async () => {
    // The requests with the query secret are in (their spans are exported in batches).
    for (const id of querySecretRequestIds) await traceOf(id);
    const spans = await ch.query<Record<string, unknown>>("SELECT * FROM debug_spans");
    const errors = await ch.query<Record<string, unknown>>("SELECT * FROM debug_errors");
    expect(spans.length).toBeGreaterThan(20);
    const stored = JSON.stringify([spans, errors]);
    const pw = (url: string) => decodeURIComponent(new URL(url).password);
    const secrets = {
      JWT_SECRET,
      QUERY_SECRET,
      COOKIE_SECRET,
      processorKey: fake.apiKey,
      webhookSecret: fake.webhookSecret,
      postgresPassword: pw(srv.env.POSTGRES_URL),
      redisPassword: pw(redis.url),
      clickhousePassword: srv.env.CLICKHOUSE_PASSWORD,
      ...Object.fromEntries(tokens.map((t, i) => [`token${i}`, t])),
    };
    for (const [name, value] of Object.entries(secrets)) {
      expect(value.length, name).toBeGreaterThan(8);
      expect(stored.includes(value), `${name} found in stored spans`).toBe(false);
    }
    // The query string was recorded, its value masked.
    expect(stored).toContain("token=[REDACTED]");
  });

  it("an unreachable collector never breaks a request", async () => {
    await debug.close();
    try {
      for (let i = 0; i < 5; i++) expect((await api("GET", "/billing/plans", adminToken)).status).toBe(200);
    } finally {
      debug = await createService(chainDebug, { env: { ...srv.env, LOG_LEVEL: "warn" }, defaultMetrics: false });
      await debug.listen({ port: debugPort, host: "127.0.0.1" });
    }
    expect((await api("GET", "/debug/errors", adminToken)).status).toBe(200);
  }, 120_000);
});
