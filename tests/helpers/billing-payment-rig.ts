/**
 * billing-service and payment-service in process on real PostgreSQL and Kafka, payments.events
 * between them (payment-service's outbox, billing's consumer group of its own), the card processor
 * tests/fakes/card-processor.ts behind payment-service with its webhooks, and a monthly plan of
 * 10.00 usd: the set-up the suites of the charges between the two services share (before, each
 * spelt it again). Neither service reconciles or runs its billing cycle on a timer: a test asks for
 * a pass (`POST /reconcile`, `POST /cycle`). A suite's own hooks, registered after this call, run
 * after the rig's beforeAll and before its afterAll.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect } from "vitest";
import { kafkajs, pg } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { ensureKafkaTopics, runPostgresMigrations } from "../../services/src/migrations";
import billingService from "../../services/src/services/billing-service";
import paymentService from "../../services/src/services/payment-service";
import { FakeCardProcessor } from "../fakes/card-processor";
import { http, waitUntil } from "../trading/e2e-helpers";

export interface BillingPaymentRig {
  /** A suffix of this file's run, in the plan's and the consumer group's names. */
  readonly run: string;
  /** The id of the plan made at the start: 10.00 usd a month. */
  readonly plan: string;
  /** billing-service's consumer group of payments.events. */
  readonly group: string;
  readonly fake: FakeCardProcessor;
  /** An admin's identity headers, as the gateway forwards them. */
  readonly admin: Record<string, string>;
  readonly pool: InstanceType<typeof pg.Pool>;
  readonly kafka: InstanceType<typeof kafkajs.Kafka>;
  /** payment-service's base URL. */
  readonly payments: string;
  /** billing-service's base URL. */
  readonly billing: string;
  /** billing-service itself (its /metrics through inject). */
  readonly billingService: Service<any>;
  /** The variables the rig's services started with (its PostgreSQL database, the broker, timings): for another service of the file. */
  readonly env: Record<string, string>;
}

export interface BillingPaymentRigOptions {
  /** How the fake processor answers a charge at first ("sync" by default; "async": processing, settled later). */
  processorMode?: "sync" | "async";
  /** billing-service's variables beside the rig's (they win). */
  billingEnv?: Record<string, string>;
  /** Where billing-service's log lines go (the rig's services log nothing otherwise); with billingEnv's LOG_LEVEL. */
  billingLog?: { write(line: string): void };
}

type Writable = { -readonly [K in keyof BillingPaymentRig]: BillingPaymentRig[K] };

export function useBillingPaymentRig(opts: BillingPaymentRigOptions = {}): BillingPaymentRig {
  const srv = useServers("postgres", "kafka");
  const run = randomBytes(3).toString("hex");
  const started: Service<any>[] = [];
  const rig = {
    run,
    plan: `basic-${run}`,
    group: `billing-${run}`,
    fake: new FakeCardProcessor(),
    admin: { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" },
  } as Partial<Writable> as Writable;

  beforeAll(async () => {
    const { fake } = rig;
    await fake.start();
    if (opts.processorMode) fake.mode = opts.processorMode;
    const env: Record<string, string> = {
      ...srv.env, ...fake.env, LOG_LEVEL: "silent", KAFKA_SESSION_TIMEOUT_MS: "6000", KAFKA_HEARTBEAT_MS: "500",
      PAYMENT_RECONCILE_INTERVAL_MS: "0", PAYMENT_RECONCILE_GRACE_MS: "0", PAYMENT_OUTBOX_INTERVAL_MS: "50",
      BILLING_OUTBOX_INTERVAL_MS: "50", BILLING_CYCLE_INTERVAL_MS: "0", BILLING_CONSUMER_GROUP: rig.group,
    };
    rig.env = env;
    rig.pool = new pg.Pool({ connectionString: env.POSTGRES_URL, max: 4 });
    await runPostgresMigrations(rig.pool);
    rig.kafka = new kafkajs.Kafka({ brokers: env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING });
    const groups = rig.kafka.admin();
    await groups.connect();
    await ensureKafkaTopics(groups);
    const payments = await createService(paymentService, { env, defaultMetrics: false });
    started.push(payments);
    rig.payments = await payments.listen({ port: 0, host: "127.0.0.1" });
    rig.billingService = await createService(billingService, { env: { ...env, SERVICE_PAYMENT_SERVICE_URL: rig.payments, ...opts.billingEnv }, defaultMetrics: false, ...(opts.billingLog ? { logStream: opts.billingLog } : {}) });
    started.push(rig.billingService);
    rig.billing = await rig.billingService.listen({ port: 0, host: "127.0.0.1" });
    fake.webhookUrl = `${rig.payments}/webhooks/processor`;
    await waitUntil("billing's consumer group stable", async () => (await groups.describeGroups([rig.group])).groups.every((g) => g.state === "Stable" && g.members.length > 0), 240_000, 500);
    await groups.disconnect();
    const plan = await http("POST", `${rig.billing}/plans`, { body: { id: rig.plan, name: "Basic", currency: "usd", amount: 1_000, interval: "month" }, headers: rig.admin });
    expect(plan.status, JSON.stringify(plan.body)).toBe(201);
  }, 300_000);

  afterAll(async () => {
    for (const s of started.reverse()) await s.close().catch(() => undefined);
    await rig.pool?.end();
    await rig.fake.stop();
  });

  return rig;
}
