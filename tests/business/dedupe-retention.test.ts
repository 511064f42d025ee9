/**
 * Retention of the two dedupe tables on real PostgreSQL (found in session 48: a row per event id, kept
 * forever). payment-service's pay_webhook_events (a processor webhook event id handled: a redelivery is
 * a duplicate) loses rows received longer ago than PAYMENT_WEBHOOK_EVENT_RETENTION_DAYS, whose floor is
 * the processor's retries (3 days), the signature tolerance and a day; billing-service's
 * bil_processed_events (a payments.events id applied: a redelivery applies nothing) loses rows applied
 * longer ago than BILLING_PROCESSED_EVENT_RETENTION_DAYS, whose floor is payments.events' declared
 * retention, its segment roll and a day. A bounded batch a pass, oldest first; younger rows stay, and
 * their events are still refused when they come again.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { migratedKitPostgres } from "../helpers/schemas";
import { createService, type PostgresClient } from "../../services/src/kit";
import paymentService from "../../services/src/services/payment-service";
import billingService from "../../services/src/services/billing-service";
import { PaymentRepo } from "../../services/src/services/payment-service/repo";
import { BillingRepo } from "../../services/src/services/billing-service/repo";
import { webhookEventRetentionFloorDays } from "../../services/src/services/payment-service/domain/webhook-retention";
import { processedEventRetentionFloorDays } from "../../services/src/services/billing-service/domain/event-retention";

const srv = useServers("postgres");
let client: PostgresClient;
let pool: InstanceType<typeof pg.Pool>;
const run = randomUUID();
const DAY_MS = 86_400_000;

beforeAll(async () => {
  client = await migratedKitPostgres(srv.postgres.url, { warn() {}, info() {}, error() {}, debug() {} } as never, 2);
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 2 });
});
afterAll(async () => {
  await pool?.end();
  await client?.close();
});

const startEnv = () => ({ ...srv.env, LOG_LEVEL: "silent", KAFKA_BROKERS: srv.env.KAFKA_BROKERS ?? "127.0.0.1:1" });

describe("pay_webhook_events retention", () => {
  const id = (name: string) => `evt_${name}_${run}`;
  const left = async () =>
    (await pool.query<{ e: string }>("SELECT event_id AS e FROM pay_webhook_events WHERE event_id LIKE $1 ORDER BY event_id", [`%_${run}`])).rows.map((r) => r.e.replace(/^evt_|_[^_]+$/g, ""));

  it("deletes ids received past the retention, a bounded batch a pass, oldest first; keeps younger ones, still refused again", async () => {
    const repo = new PaymentRepo(client);
    const ages = { old1: 200, old2: 45, old3: 31, edge: 29, young: 1 } as const;
    for (const [name, days] of Object.entries(ages)) {
      expect(await repo.markWebhookEvent(id(name), "payment_intent.succeeded")).toBe(true);
      await pool.query("UPDATE pay_webhook_events SET received_at = now() - make_interval(days => $2) WHERE event_id = $1", [id(name), days]);
    }
    expect(await repo.deleteWebhookEventsPastRetention(30, 2)).toBeGreaterThanOrEqual(1);
    expect(await left()).not.toContain("old1");
    while ((await repo.deleteWebhookEventsPastRetention(30, 2)) > 0);
    expect(await left()).toEqual(["edge", "young"]);
    // A young event delivered again is still a duplicate; a deleted one's id is free again.
    expect(await repo.markWebhookEvent(id("young"), "payment_intent.succeeded")).toBe(false);
    expect(await repo.markWebhookEvent(id("edge"), "payment_intent.succeeded")).toBe(false);
    expect(await repo.markWebhookEvent(id("old3"), "payment_intent.succeeded")).toBe(true);
  });

  it("refuses at start a retention shorter than the processor's retries, naming the variable", async () => {
    // 3 days of retries, the signature tolerance (300 s by default) and a day: 5.
    await expect(createService(paymentService, { env: { ...startEnv(), PAYMENT_WEBHOOK_EVENT_RETENTION_DAYS: "4" }, defaultMetrics: false })).rejects.toThrow(
      /PAYMENT_WEBHOOK_EVENT_RETENTION_DAYS \(4\) must be at least 5: the processor's webhook retries/,
    );
    expect([0, 300, 3_600].map((s) => webhookEventRetentionFloorDays(s))).toEqual([4, 5, 5]);
  });
});

describe("bil_processed_events retention", () => {
  const id = (name: string) => `pe-${name}-${run}`;
  const left = async () =>
    (await pool.query<{ e: string }>("SELECT event_id AS e FROM bil_processed_events WHERE event_id LIKE $1 ORDER BY event_id", [`%-${run}`])).rows.map((r) => r.e.slice(3, -run.length - 1));

  it("deletes ids applied past the retention, a bounded batch a pass, oldest first; keeps younger ones, still refused again", async () => {
    const repo = new BillingRepo(client);
    const ages = { old1: 400, old2: 200, old3: 121, edge: 119, young: 3 } as const;
    for (const [name, days] of Object.entries(ages)) {
      expect(await repo.markProcessed(pool, id(name))).toBe(true);
      await pool.query("UPDATE bil_processed_events SET applied_at = now() - make_interval(days => $2) WHERE event_id = $1", [id(name), days]);
    }
    expect(await repo.deleteProcessedEventsPastRetention(120, 2)).toBeGreaterThanOrEqual(1);
    expect(await left()).not.toContain("old1");
    while ((await repo.deleteProcessedEventsPastRetention(120, 2)) > 0);
    expect(await left()).toEqual(["edge", "young"]);
    expect(await repo.markProcessed(pool, id("young"))).toBe(false);
    expect(await repo.markProcessed(pool, id("edge"))).toBe(false);
  });

  it("refuses at start a retention shorter than the longest a payment event can come back, naming the variable", async () => {
    // payments.events keeps 90 days and rolls its segments daily (both declared in migrations/kafka.ts), and a day: 92.
    await expect(createService(billingService, { env: { ...startEnv(), BILLING_PROCESSED_EVENT_RETENTION_DAYS: "91" }, defaultMetrics: false })).rejects.toThrow(
      /BILLING_PROCESSED_EVENT_RETENTION_DAYS \(91\) must be at least 92: payments\.events/,
    );
    expect(processedEventRetentionFloorDays({ retentionMs: 90 * DAY_MS, segmentMs: DAY_MS })).toBe(92);
    expect(processedEventRetentionFloorDays({ retentionMs: 90 * DAY_MS, segmentMs: 3_600_000 })).toBe(92);
  });
});
