/**
 * billing-service's use cases (Billing) on a real PostgreSQL with stand-ins for its two peers:
 * payment-service answers each charge as the test says (the outcome delivered on "payments.events"
 * at once: billing.onPaymentEvent in its own transaction), usage-monitoring counts the units a test
 * recorded at given instants. Periods are moved in the database, as the gateway-level tests do.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import { useServers } from "../harness/shared";
import { migratedKitPostgres } from "./schemas";
import type { PostgresClient } from "../../services/src/kit/datastores/postgres";
import type { PaymentEventMsg } from "../../services/src/business/events";
import { type Currency, MIN_CHARGE } from "../../services/src/business/money";
import { Billing, type UsageSource } from "../../services/src/services/billing-service/billing";
import { ChargeRefusedError, type PaymentGateway } from "../../services/src/services/billing-service/invoicing";
import { BillingRepo } from "../../services/src/services/billing-service/repo";
import type { Plan } from "../../services/src/services/billing-service/domain/subscriptions";
import { ensureAccount } from "./accounts";

/**
 * Billing whose subscribers have accounts (user-management's users rows, which these tests run
 * without): the cycle ends a deleted account's subscription and charges no disabled account.
 */
export class BillingWithAccounts extends Billing {
  constructor(
    private readonly db: PostgresClient,
    ...rest: ConstructorParameters<typeof Billing>
  ) {
    super(...rest);
  }

  override async subscribe(userId: string, planId: string, paymentMethod: string) {
    await ensureAccount(this.db.pool, userId);
    return super.subscribe(userId, planId, paymentMethod);
  }
}

/** What payment-service does with a charge request: pays, declines, or refuses the request (a 4xx). */
export type ChargeAnswer = "pay" | "decline" | "refuse";

export interface BillingRig {
  billing: Billing;
  repo: BillingRepo;
  /** The answer to the user's next charges (default "pay"). */
  answer: Map<string, ChargeAnswer>;
  /** Payment methods payment-service does not know as saved (every other one is saved to whoever names it). */
  notSaved: Set<string>;
  /** Every charge request, in order. */
  charges: { userId: string; amount: bigint; idempotencyKey: string; paymentMethod: string }[];
  /** Every refund request, in order (each refunded, or pending for the payments in `refundsPending`); a retried key answers the same refund id. */
  refunds: { intentId: string; amount: bigint; idempotencyKey: string; refundId: string }[];
  /** Payments whose refund payment-service answers `pending` (the money not back yet; default `succeeded`). */
  refundsPending: Set<string>;
  /** Payments whose refund payment-service refuses for good (a 409: billing leaves it to an operator). */
  refundsRefused: Set<string>;
  /** Records `n` metered units of the user at `at`. */
  use(userId: string, n: number, at: Date): void;
  warnings: unknown[];
}

/** `warnings`: where the rig's log puts warnings and errors (a new array unless given). */
export function billingRig(client: PostgresClient, warnings: unknown[] = []): BillingRig {
  const repo = new BillingRepo(client);
  const answer = new Map<string, ChargeAnswer>();
  const notSaved = new Set<string>();
  const charges: BillingRig["charges"] = [];
  const refunds: BillingRig["refunds"] = [];
  const refundsPending = new Set<string>();
  const refundsRefused = new Set<string>();
  const usage: { userId: string; at: number; n: number }[] = [];
  const log = { info() {}, debug() {}, warn: (...a: unknown[]) => warnings.push(a), error: (...a: unknown[]) => warnings.push(a) };
  let billing: Billing;
  const outcome = (type: PaymentEventMsg["type"], p: Parameters<PaymentGateway["charge"]>[0], intentId: string): PaymentEventMsg => ({
    eventId: randomUUID(), type, intentId, userId: p.userId, amount: Number(p.amount), currency: p.currency, reference: p.reference, failureCode: type === "payment.failed" ? "card_declined" : null, ts: Date.now(),
  });
  const payments: PaymentGateway = {
    // Saved unless a test says not: payment-service's check is tested against it (tests/business/payment-methods.test.ts).
    isSaved: async (_userId, paymentMethod) => !notSaved.has(paymentMethod),
    async refund(p) {
      if (refundsRefused.has(p.intentId)) throw new ChargeRefusedError("REFUND_EXCEEDS_PAYMENT", "nothing left to refund");
      const refundId = refunds.find((r) => r.idempotencyKey === p.idempotencyKey)?.refundId ?? randomUUID();
      refunds.push({ intentId: p.intentId, amount: p.amount, idempotencyKey: p.idempotencyKey, refundId });
      return { refundId, status: refundsPending.has(p.intentId) ? "pending" : "succeeded" };
    },
    async charge(p) {
      charges.push({ userId: p.userId, amount: p.amount, idempotencyKey: p.idempotencyKey, paymentMethod: p.paymentMethod });
      // Below the processor's minimum charge the processor refuses it, and payment-service records a failed payment.
      const a = BigInt(p.amount) < MIN_CHARGE[p.currency as Currency] ? "decline" : (answer.get(p.userId) ?? "pay");
      if (a === "refuse") throw new ChargeRefusedError("IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request");
      const intentId = randomUUID();
      const ev = outcome(a === "pay" ? "payment.succeeded" : "payment.failed", p, intentId);
      await client.transaction((c) => billing.onPaymentEvent(c, ev));
      return { intentId, status: a === "pay" ? "succeeded" : "failed" };
    },
  };
  const units: UsageSource = {
    async units(userId, _metric, from, to) {
      const n = usage.filter((u) => u.userId === userId && u.at >= from.getTime() && u.at < to.getTime()).reduce((a, u) => a + u.n, 0);
      return BigInt(n);
    },
  };
  billing = new BillingWithAccounts(client, repo, payments, units, log as never, { retryAfterDays: [1, 3, 5] }, () => undefined);
  return { billing, repo, answer, notSaved, charges, refunds, refundsPending, refundsRefused, use: (userId, n, at) => usage.push({ userId, n, at: at.getTime() }), warnings };
}

/** A billing rig and the PostgreSQL client it runs on. */
export interface BillingRigOnPostgres extends BillingRig {
  client: PostgresClient;
  /** Delivers one payments.events message as billing-service's consumer does: onPaymentEvent in its own transaction. */
  apply(ev: PaymentEventMsg): Promise<unknown>;
}

/**
 * The setup of a file of billing tests: a migrated database of its own (created in `beforeAll`, its
 * client closed in `afterAll`), a billing rig on it and `plans` created. Call it at the top of the
 * file; the fields are there once `beforeAll` has run (inside tests and hooks). The database
 * client's warnings go to `warnings` too.
 */
export function useBillingRig(plans: Plan[]): BillingRigOnPostgres {
  const srv = useServers("postgres");
  let ready: BillingRigOnPostgres | undefined;
  const rig = (): BillingRigOnPostgres => {
    if (!ready) throw new Error("the billing rig is set up in beforeAll: use it inside tests and hooks");
    return ready;
  };
  beforeAll(async () => {
    const warnings: unknown[] = [];
    const log = { info() {}, debug() {}, warn: (...a: unknown[]) => warnings.push(a), error: (...a: unknown[]) => warnings.push(a) };
    const client = await migratedKitPostgres(srv.env.POSTGRES_URL, log as never, 4);
    ready = { ...billingRig(client, warnings), client, apply: (ev) => client.transaction((c) => ready!.billing.onPaymentEvent(c, ev)) };
    for (const p of plans) await ready.repo.createPlan(p);
  }, 300_000);
  afterAll(async () => {
    await ready?.client.close();
  });
  return {
    get billing() { return rig().billing; },
    get repo() { return rig().repo; },
    get answer() { return rig().answer; },
    get notSaved() { return rig().notSaved; },
    get charges() { return rig().charges; },
    get refunds() { return rig().refunds; },
    get refundsPending() { return rig().refundsPending; },
    get refundsRefused() { return rig().refundsRefused; },
    get warnings() { return rig().warnings; },
    get client() { return rig().client; },
    use: (userId, n, at) => rig().use(userId, n, at),
    apply: (ev) => rig().apply(ev),
  };
}

/** A payments.events message of `type` about `intentId`, paying `invoiceId` of `userId` (1,000 in usd unless `extra` says otherwise). */
export const paymentEvent = (type: PaymentEventMsg["type"], userId: string, invoiceId: string, intentId: string, extra: Partial<PaymentEventMsg> = {}): PaymentEventMsg => ({
  eventId: `${intentId}:${type}:${randomUUID()}`, type, intentId, userId, amount: 1000, currency: "usd", reference: `invoice:${invoiceId}`, failureCode: null, ts: Date.now(), ...extra,
});

export const plan = (id: string, amount: number, usage?: { included: number; blockSize: number; blockAmount: number }): Plan => ({
  id, name: id, currency: "usd", amount: BigInt(amount), interval: "month", trialDays: 0,
  usage: usage ? { metric: "api_requests", included: BigInt(usage.included), blockSize: BigInt(usage.blockSize), blockAmount: BigInt(usage.blockAmount) } : null,
});

/** The user's invoices, oldest first, with their lines as [kind, amount]. */
export async function invoicesOf(client: PostgresClient, userId: string) {
  const { rows } = await client.pool.query<{ invoice_id: string; status: string; attempts: number; next_attempt_at: Date | null; subtotal: string; amount_due: string; credit_applied: string; lines: [string, number][] | null }>(
    `SELECT i.invoice_id, i.status, i.attempts, i.next_attempt_at, i.subtotal, i.amount_due, i.credit_applied,
            (SELECT json_agg(json_build_array(l.kind, l.amount) ORDER BY l.line_no) FROM bil_invoice_lines l WHERE l.invoice_id = i.invoice_id) AS lines
       FROM bil_invoices i WHERE i.user_id = $1 ORDER BY i.created_at, i.invoice_id`,
    [userId],
  );
  return rows.map((r) => ({ ...r, subtotal: Number(r.subtotal), amountDue: Number(r.amount_due), creditApplied: Number(r.credit_applied), lines: r.lines ?? [] }));
}

export async function subscriptionOf(client: PostgresClient, userId: string) {
  return (await client.pool.query<{ subscription_id: string; status: string; plan_id: string; credit_balance: string; payment_method: string }>("SELECT * FROM bil_subscriptions WHERE user_id = $1 ORDER BY created_at DESC LIMIT 1", [userId])).rows[0];
}
