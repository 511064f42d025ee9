/**
 * Two payment-service replicas on one real PostgreSQL (and Kafka), with the fake card processor
 * behind the `stripe` SDK (./payment-rig.ts), a trader holding a saved card, and the refund routes an admin calls:
 * the set-up the refund reconciliation tests share. After each test the ledger must balance in
 * every currency, whatever the test did.
 */
import { randomUUID } from "node:crypto";
import { afterEach, beforeAll } from "vitest";
import type { pg } from "../harness";
import type { FakeCardProcessor } from "../fakes/card-processor";
import { http } from "../trading/e2e-helpers";
import { usePaymentService } from "./payment-rig";

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
  const rig = usePaymentService(fake, { env: o.env, replicas: 2, webhooks: o.webhooksToFirst ?? false, onLog: o.onLog });
  const { bases } = rig;
  const trader = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
  let visa: string;

  beforeAll(async () => {
    visa = await rig.saveCard(trader);
  });

  afterEach(async () => {
    o.resetFake();
    await rig.expectLedgerBalanced();
  });

  return {
    bases,
    get pool() {
      return rig.pool;
    },
    trader,
    payment: (amount) => rig.payment(trader, visa, amount),
    refund: (intentId, key, amount) =>
      http("POST", `${bases[0]}/intents/${intentId}/refunds`, { body: amount === undefined ? {} : { amount }, headers: { ...admin, "idempotency-key": key } }),
    reconcile: (base = bases[0]) => http("POST", `${base}/reconcile`, { headers: admin }),
  };
}
