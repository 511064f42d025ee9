/**
 * Two payment-service replicas on one real PostgreSQL (and Kafka), with the fake card processor
 * behind the `stripe` SDK, a trader holding a saved card, and the refund routes an admin calls:
 * the set-up the refund reconciliation tests share. After each test the ledger must balance in
 * every currency, whatever the test did.
 */
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { createService, type Service } from "../../services/src/kit";
import { runPostgresMigrations } from "../../services/src/migrations";
import paymentService from "../../services/src/services/payment-service";
import type { FakeCardProcessor } from "../fakes/card-processor";
import { http } from "../trading/e2e-helpers";

export const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };

/** payment_refund_issues_total{kind} as the replica at `base` counts it (0 before the first). */
export async function refundIssuesCounted(base: string, kind: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(text.match(new RegExp(`^payment_refund_issues_total\\{[^}]*kind="${kind}"[^}]*\\} (\\d+)`, "m"))?.[1] ?? 0);
}

export interface PaymentReplicas {
  /** The replicas' base URLs (two). */
  readonly bases: string[];
  readonly pool: InstanceType<typeof pg.Pool>;
  readonly trader: Record<string, string>;
  /** A card payment of `amount` cents by the trader, succeeded. */
  payment(amount: number): Promise<{ id: string; processorIntentId: string }>;
  /** An admin's refund of the payment under `key` (the whole rest when `amount` is omitted), on replica 0. */
  refund(intentId: string, key: string, amount?: number): ReturnType<typeof http>;
  /** One reconciliation pass on the replica at `base` (replica 0 by default). */
  reconcile(base?: string): ReturnType<typeof http>;
}

/**
 * Registers the suite's hooks. `env`: the payment-service settings of the suite (processor timeout,
 * intervals); `resetFake`: the fake's knobs the suite turns, put back after each test.
 */
export function usePaymentReplicas(
  fake: FakeCardProcessor,
  o: { env: Record<string, string>; webhooksToFirst?: boolean; resetFake: () => void; onLog?: (line: Record<string, unknown>) => void },
): PaymentReplicas {
  const srv = useServers("postgres", "kafka");
  const services: Service<any>[] = [];
  const bases: string[] = [];
  const trader = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
  let pool!: InstanceType<typeof pg.Pool>;
  let visa: string;

  beforeAll(async () => {
    await fake.start();
    const env: Record<string, string> = { ...srv.env, LOG_LEVEL: o.onLog ? "info" : "silent", ...fake.env, PAYMENT_RECONCILE_INTERVAL_MS: "0", PAYMENT_OUTBOX_INTERVAL_MS: "50", ...o.env };
    const onLog = o.onLog;
    // (each replica's log lines, parsed, to `onLog` when the suite reads them)
    const logStream = onLog && { write: (line: string) => void onLog(JSON.parse(line) as Record<string, unknown>) };
    pool = new pg.Pool({ connectionString: env.POSTGRES_URL, max: 2 });
    await runPostgresMigrations(pool);
    for (let i = 0; i < 2; i++) {
      const svc = await createService(paymentService, { env, defaultMetrics: false, logStream });
      services.push(svc);
      bases.push(await svc.listen({ port: 0, host: "127.0.0.1" }));
    }
    if (o.webhooksToFirst) fake.webhookUrl = `${bases[0]}/webhooks/processor`;
    const saved = await http("POST", `${bases[0]}/payment-methods`, { body: { paymentMethod: "pm_card_visa" }, headers: trader });
    expect(saved.status, JSON.stringify(saved.body)).toBe(201);
    visa = saved.body.paymentMethod;
  }, 240_000);

  afterEach(async () => {
    o.resetFake();
    const { rows } = await pool.query("SELECT currency, sum(amount)::text AS total FROM pay_ledger_entries GROUP BY currency");
    for (const r of rows) expect(r.total, `ledger total in ${r.currency}`).toBe("0");
  });

  afterAll(async () => {
    for (const s of services) await s.close();
    await pool?.end();
    await fake.stop();
  });

  return {
    bases,
    get pool() {
      return pool;
    },
    trader,
    async payment(amount) {
      const r = await http("POST", `${bases[0]}/intents`, { body: { amount, currency: "usd", paymentMethod: visa }, headers: { ...trader, "idempotency-key": `k-${randomUUID()}` } });
      expect([r.status, r.body.status]).toEqual([201, "succeeded"]);
      return r.body;
    },
    refund: (intentId, key, amount) =>
      http("POST", `${bases[0]}/intents/${intentId}/refunds`, { body: amount === undefined ? {} : { amount }, headers: { ...admin, "idempotency-key": key } }),
    reconcile: (base = bases[0]) => http("POST", `${base}/reconcile`, { headers: admin }),
  };
}
