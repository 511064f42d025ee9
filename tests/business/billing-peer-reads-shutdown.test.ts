/**
 * billing-service (in process, real PostgreSQL and Kafka) closing while a request waits for a peer's
 * read: payment-service's saved-card check of a subscribe, usage-monitoring's metered units of a
 * renewal in the cycle (both stand-ins here, holding the request when told to). Before session 53
 * these reads were bounded by their 10 s alone, and the close waited for them past
 * SHUTDOWN_TIMEOUT_MS. They are now cut PEER_CLOSE_GRACE_MS into the close (kit peers `cutOnClose`):
 * 503 SHUTTING_DOWN, nothing written, and a renewal whose usage read was cut is not set aside as a
 * failed row (billing-service isolation.ts: the shutdown is no fault of the row's).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server, type ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkajs, pg } from "../harness";
import { useServers } from "../harness/shared";
import { createService, PEER_CLOSE_GRACE_MS } from "../../services/src/kit";
import { ensureKafkaTopics, runPostgresMigrations } from "../../services/src/migrations";
import billingService from "../../services/src/services/billing-service";
import { ensureAccount } from "../helpers/accounts";
import { listen } from "../helpers/http-stand-ins";
import { http, waitUntil } from "../trading/e2e-helpers";

const srv = useServers("postgres", "kafka");
const run = randomBytes(3).toString("hex");
const PLAN = `metered-${run}`;
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };
let pool: InstanceType<typeof pg.Pool>;
let peers: Server;
let peersUrl: string;
/** The reads the stand-in holds unanswered (their paths start so); every other request is answered. */
const holding = new Set<string>();
const held: Array<{ url: string; res: ServerResponse }> = [];

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 2 });
  await runPostgresMigrations(pool);
  const topics = new kafkajs.Kafka({ brokers: srv.env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
  await topics.connect();
  await ensureKafkaTopics(topics);
  await topics.disconnect();
  // payment-service and usage-monitoring in one: a saved card, a charge processing, 7 units.
  peers = createServer((req, res) => {
    req.resume();
    const url = req.url ?? "";
    if ([...holding].some((p) => url.startsWith(p))) return void held.push({ url, res });
    res.setHeader("content-type", "application/json");
    if (url.startsWith("/internal/payment-methods/")) return void res.end(JSON.stringify({ paymentMethod: "pm_card_visa" }));
    if (url.startsWith("/internal/intents")) return void res.writeHead(201).end(JSON.stringify({ id: randomUUID(), status: "processing" }));
    if (url.startsWith("/internal/usage/units")) return void res.end(JSON.stringify({ units: 7 }));
    res.writeHead(404).end("{}");
  });
  peersUrl = await listen(peers);
}, 300_000);

afterAll(async () => {
  for (const h of held) h.res.socket?.destroy();
  peers?.close();
  await pool?.end();
});

async function billing() {
  const env = {
    ...srv.env, LOG_LEVEL: "silent", BILLING_CYCLE_INTERVAL_MS: "0", BILLING_CONSUMER_GROUP: `billing-${run}`,
    SERVICE_PAYMENT_SERVICE_URL: peersUrl, SERVICE_USAGE_MONITORING_URL: peersUrl,
  };
  const b = await createService(billingService, { env, defaultMetrics: false });
  return { b, url: await b.listen({ port: 0, host: "127.0.0.1" }) };
}

/** `send` on a new billing-service, the service closed once the stand-in holds a read at `path`: the answer and how long after the close began it came. */
async function closedWhileWaiting(path: string, send: (url: string) => ReturnType<typeof http>) {
  const { b, url } = await billing();
  try {
    holding.add(path);
    const before = held.length;
    const answer = send(url);
    await waitUntil(`billing-service asked for ${path}`, async () => held.length > before, 30_000, 20);
    const t0 = performance.now();
    const closed = b.close();
    const r = await answer;
    const tookMs = performance.now() - t0;
    await closed;
    return { r, tookMs };
  } finally {
    holding.delete(path);
    await b.close().catch(() => undefined);
  }
}

function cutByTheClose({ r, tookMs }: Awaited<ReturnType<typeof closedWhileWaiting>>, route: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(503);
  expect(r.body.error).toMatchObject({ code: "SHUTTING_DOWN", message: expect.stringContaining(`its call to the service at /api/${route}/ was cut`) });
  expect(r.headers.get("retry-after")).toBe("1");
  expect(tookMs).toBeGreaterThanOrEqual(PEER_CLOSE_GRACE_MS - 50);
  expect(tookMs).toBeLessThan(PEER_CLOSE_GRACE_MS + 3_000);
}

describe("billing-service closing while a request waits for a peer's read", { timeout: 300_000 }, () => {
  beforeAll(async () => {
    const { b, url } = await billing();
    try {
      const plan = await http("POST", `${url}/plans`, {
        headers: admin,
        body: { id: PLAN, name: "Metered", currency: "usd", amount: 1_000, interval: "month", usage: { metric: "api_requests", included: 5, blockSize: 5, blockAmount: 100 } },
      });
      expect(plan.status, JSON.stringify(plan.body)).toBe(201);
    } finally {
      await b.close();
    }
  }, 300_000);

  it("a subscribe's saved-card check is cut within the grace: 503 SHUTTING_DOWN, no subscription", async () => {
    const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    await ensureAccount(pool, user["x-user-id"]);
    const cut = await closedWhileWaiting("/internal/payment-methods/", (url) => http("POST", `${url}/subscriptions`, { headers: user, body: { planId: PLAN, paymentMethod: "pm_card_visa" } }));
    cutByTheClose(cut, "payments");
    expect((await pool.query("SELECT 1 FROM bil_subscriptions WHERE user_id = $1", [user["x-user-id"]])).rows).toEqual([]);
  });

  it("a renewal's usage read in the cycle is cut within the grace: 503 SHUTTING_DOWN, not renewed, not set aside", async () => {
    const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    await ensureAccount(pool, user["x-user-id"]);
    const { b, url } = await billing();
    let id: string;
    try {
      const sub = await http("POST", `${url}/subscriptions`, { headers: user, body: { planId: PLAN, paymentMethod: "pm_card_visa" } });
      expect(sub.status, JSON.stringify(sub.body)).toBe(201);
      id = sub.body.id;
    } finally {
      await b.close();
    }
    // Paid up and due: the cycle renews it, asking usage-monitoring for the period's units.
    await pool.query("UPDATE bil_invoices SET status = 'paid', next_attempt_at = NULL WHERE subscription_id = $1", [id]);
    const { rows: [due] } = await pool.query(
      "UPDATE bil_subscriptions SET status = 'active', period_start = now() - interval '1 month', period_end = now() - interval '1 second' WHERE subscription_id = $1 RETURNING period_end",
      [id],
    );
    const cut = await closedWhileWaiting("/internal/usage/units", (u) => http("POST", `${u}/cycle`, { headers: admin }));
    cutByTheClose(cut, "usage");
    const { rows: [after] } = await pool.query("SELECT period_end, cycle_failures, cycle_retry_at FROM bil_subscriptions WHERE subscription_id = $1", [id]);
    expect(after).toEqual({ period_end: due.period_end, cycle_failures: 0, cycle_retry_at: null });
  });
});
