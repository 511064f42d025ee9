/**
 * payment-service started whole on real PostgreSQL and Kafka (the topics made first), its card
 * processor the fake one (tests/fakes/card-processor.ts) behind the `stripe` SDK: the set-up the
 * payment suites share (payment-replicas.ts starts two replicas with it). A suite's own hooks,
 * registered after this call, run after the rig's beforeAll and before its afterAll.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect } from "vitest";
import { kafkajs, pg } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { ensureKafkaTopics, runPostgresMigrations } from "../../services/src/migrations";
import paymentService from "../../services/src/services/payment-service";
import type { FakeCardProcessor } from "../fakes/card-processor";
import { http } from "../trading/e2e-helpers";

export interface PaymentRigOptions {
  /**
   * The suite's payment-service settings, over the rig's (no periodic reconciliation, the outbox every
   * 50 ms); a function is given the servers' settings in beforeAll (a suite that puts a proxy before a server).
   */
  env?: Record<string, string> | ((servers: Record<string, string>) => Promise<Record<string, string>>);
  /** Replicas started on the same database (1 by default). */
  replicas?: number;
  /** Connections of the suite's own pool (2 by default). */
  poolMax?: number;
  /** The fake's webhooks go to replica 0 (true by default). */
  webhooks?: boolean;
  /** Each replica's log lines, parsed (LOG_LEVEL info then, silent otherwise). */
  onLog?: (line: Record<string, unknown>) => void;
}

export interface PaymentRig {
  /** The replicas' base URLs. */
  readonly bases: string[];
  /** Replica 0's base URL. */
  readonly base: string;
  /** The rig's own pool, on PostgreSQL itself (not through a suite's proxy). */
  readonly pool: InstanceType<typeof pg.Pool>;
  /** The services' settings (a suite may start another process of the service with them). */
  readonly env: Record<string, string>;
  /** Saves the card `token` for the caller of `headers` on replica 0 (201 expected): its payment method id. */
  saveCard(headers: Record<string, string>, token?: string): Promise<string>;
  /** A card payment of `amount` cents in usd by the caller of `headers` on replica 0, succeeded (201 expected). */
  payment(headers: Record<string, string>, paymentMethod: string, amount: number): Promise<{ id: string; processorIntentId: string }>;
  /** Expects the ledger to balance (sum to 0) in every currency. */
  expectLedgerBalanced(): Promise<void>;
}

/** Registers the rig's hooks (beforeAll: start; afterAll: stop) and answers it, filled once beforeAll ran. */
export function usePaymentService(fake: FakeCardProcessor, o: PaymentRigOptions = {}): PaymentRig {
  const srv = useServers("postgres", "kafka");
  const services: Service<any>[] = [];
  const bases: string[] = [];
  let pool!: InstanceType<typeof pg.Pool>;
  let env!: Record<string, string>;

  beforeAll(async () => {
    await fake.start();
    const suiteEnv = typeof o.env === "function" ? await o.env(srv.env) : o.env;
    env = { ...srv.env, LOG_LEVEL: o.onLog ? "info" : "silent", ...fake.env, PAYMENT_RECONCILE_INTERVAL_MS: "0", PAYMENT_OUTBOX_INTERVAL_MS: "50", ...suiteEnv };
    const onLog = o.onLog;
    const logStream = onLog && { write: (line: string) => void onLog(JSON.parse(line) as Record<string, unknown>) };
    pool = new pg.Pool({ connectionString: srv.env.POSTGRES_URL, max: o.poolMax ?? 2 });
    await runPostgresMigrations(pool);
    const admin = new kafkajs.Kafka({ brokers: env.KAFKA_BROKERS.split(","), logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    await ensureKafkaTopics(admin);
    await admin.disconnect();
    for (let i = 0; i < (o.replicas ?? 1); i++) {
      const svc = await createService(paymentService, { env, defaultMetrics: false, logStream });
      services.push(svc);
      bases.push(await svc.listen({ port: 0, host: "127.0.0.1" }));
    }
    if (o.webhooks ?? true) fake.webhookUrl = `${bases[0]}/webhooks/processor`;
  }, 240_000);

  afterAll(async () => {
    for (const s of services) await s.close();
    await pool?.end();
    await fake.stop();
  });

  return {
    bases,
    get base() {
      return bases[0];
    },
    get pool() {
      return pool;
    },
    get env() {
      return env;
    },
    async saveCard(headers, token = "pm_card_visa") {
      const r = await http("POST", `${bases[0]}/payment-methods`, { body: { paymentMethod: token }, headers });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.paymentMethod as string;
    },
    async payment(headers, paymentMethod, amount) {
      const r = await http("POST", `${bases[0]}/intents`, { body: { amount, currency: "usd", paymentMethod }, headers: { ...headers, "idempotency-key": `k-${randomUUID()}` } });
      expect([r.status, r.body.status]).toEqual([201, "succeeded"]);
      return r.body;
    },
    async expectLedgerBalanced() {
      const { rows } = await pool.query("SELECT currency, sum(amount)::text AS total FROM pay_ledger_entries GROUP BY currency");
      for (const r of rows) expect(r.total, `ledger total in ${r.currency}`).toBe("0");
    },
  };
}

/** The identity headers the gateway sets for a trader `userId` (a request straight to payment-service, as the gateway's). */
export const traderHeaders = (userId: string) => ({ "x-user-id": userId, "x-user-role": "trader", "x-auth-method": "jwt" });

/** The payment intents recorded under Idempotency-Key `key`. */
export const intentsWithKey = async (rig: PaymentRig, key: string): Promise<number> => Number((await rig.pool.query("SELECT count(*) FROM pay_intents WHERE idempotency_key = $1", [key])).rows[0].count);
