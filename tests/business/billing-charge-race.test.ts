/**
 * A charge's outcome can arrive on payments.events before payment-service's answer to the charge
 * request (the outbox relay and Kafka were faster than the HTTP answer on a loaded machine). The
 * decline must still schedule the next dunning attempt: before the fix, the answer's late update
 * cleared `next_attempt_at` after the decline had set it, and the invoice stayed open with no
 * retry ever due (found by billing-usage.test.ts failing under load). Real PostgreSQL; the payment
 * gateway is a stand-in that delivers the outcome first or second.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Billing, type PaymentGateway } from "../../services/src/services/billing-service/billing";
import { BillingRepo } from "../../services/src/services/billing-service/repo";
import type { PaymentEventMsg } from "../../services/src/business/events";
import { BillingWithAccounts, plan, useBillingRig } from "../helpers/billing-rig";

const PLAN = `race-${randomBytes(4).toString("hex")}`;
const DAY_MS = 86_400_000;
/** The database and the plan; the Billing under test is this file's own (billingWith). */
const rig = useBillingRig([plan(PLAN, 1000)]);
/** What the code under test warned of: a charge that failed to be recorded would pass unnoticed. */
const warnings: unknown[] = [];
const log = { info() {}, warn: (...a: unknown[]) => warnings.push(a), error: (...a: unknown[]) => warnings.push(a), debug() {} };

/** A Billing whose charges are declined, the decline delivered before or after the answer. */
function billingWith(outcome: "before the answer" | "after the answer") {
  const client = rig.client;
  const repo = new BillingRepo(client);
  const later: (() => Promise<void>)[] = [];
  const decline = (reference: string, userId: string, ts: number): PaymentEventMsg => ({
    eventId: randomUUID(), type: "payment.failed", intentId: randomUUID(), userId, amount: 1000, currency: "usd", reference, failureCode: "card_declined", ts,
  });
  let billing: Billing;
  const payments: PaymentGateway = {
    // Every method counts as saved here: payment-service's check is tested against it (tests/business/payment-methods.test.ts).
    isSaved: async () => true,
    refund: async () => ({ refundId: null, status: "succeeded" as const }),
    async charge(p) {
      const deliver = () => client.transaction((c) => billing.onPaymentEvent(c, decline(p.reference, p.userId, Date.now()))).then(() => undefined);
      if (outcome === "before the answer") await deliver();
      else later.push(deliver);
      return { intentId: randomUUID(), status: "processing" };
    },
  };
  billing = new BillingWithAccounts(client, repo, payments, { units: async () => 0n }, log as never, { retryAfterDays: [1, 3] }, () => undefined);
  return { billing, repo, deliverLater: async () => { for (const d of later.splice(0)) await d(); } };
}

const invoiceOf = async (userId: string) =>
  (await rig.client.pool.query<{ status: string; attempts: number; next_attempt_at: Date | null }>(
    "SELECT i.status, i.attempts, i.next_attempt_at FROM bil_invoices i JOIN bil_subscriptions s USING (subscription_id) WHERE s.user_id = $1",
    [userId],
  )).rows;

describe("a declined charge schedules the next attempt whichever arrives first", () => {
  for (const outcome of ["before the answer", "after the answer"] as const) {
    it(`the decline ${outcome}`, async () => {
      const { billing, deliverLater } = billingWith(outcome);
      const userId = randomUUID();
      const t0 = Date.now();
      await billing.subscribe(userId, PLAN, "pm_card_chargeDeclined");
      await deliverLater();
      const [inv] = await invoiceOf(userId);
      expect(inv).toMatchObject({ status: "open", attempts: 1 });
      expect(inv.next_attempt_at).not.toBeNull();
      expect(inv.next_attempt_at!.getTime()).toBeGreaterThanOrEqual(t0 + DAY_MS - 1000);
      expect([...warnings, ...rig.warnings]).toEqual([]);
    });
  }
});

/**
 * The cycle charges the invoices it found due one after another, each an HTTP call to
 * payment-service (up to 30 s). An invoice voided meanwhile (its user cancelled now) was still
 * charged from the list read at the start: the card was charged for an invoice of a subscription
 * that had ended, and the payment, arriving for a void invoice, was only logged ("refund it").
 */
describe("the cycle charges only invoices still open when their turn comes", () => {
  // And only those of an account that still exists: one deleted while the cycle charges another
  // invoice was charged from the list read before (the cycle reads the account again at each charge).
  for (const meanwhile of ["bob cancels now", "bob's account is deleted"] as const) {
    it(`an invoice is not charged when, while the cycle charges another, ${meanwhile}`, async () => {
      const client = rig.client;
      const repo = new BillingRepo(client);
      const charged: string[] = [];
      let onCharge: (reference: string) => Promise<void> = async () => undefined;
      let billing: Billing;
      const payments: PaymentGateway = {
        isSaved: async () => true,
        refund: async () => ({ refundId: null, status: "succeeded" as const }),
        async charge(p) {
          charged.push(p.reference);
          await onCharge(p.reference);
          const ev: PaymentEventMsg = { eventId: randomUUID(), type: "payment.failed", intentId: randomUUID(), userId: p.userId, amount: Number(p.amount), currency: "usd", reference: p.reference, failureCode: "card_declined", ts: Date.now() };
          await client.transaction((c) => billing.onPaymentEvent(c, ev));
          return { intentId: randomUUID(), status: "failed" };
        },
      };
      billing = new BillingWithAccounts(client, repo, payments, { units: async () => 0n }, log as never, { retryAfterDays: [1, 3] }, () => undefined);
      const [alice, bob] = [randomUUID(), randomUUID()];
      const { subscription_id: aliceSub } = await billing.subscribe(alice, PLAN, "pm_card_chargeDeclined");
      const { subscription_id: bobSub } = await billing.subscribe(bob, PLAN, "pm_card_chargeDeclined");
      const invoiceOfSub = async (id: string) => (await client.pool.query<{ invoice_id: string; status: string }>("SELECT invoice_id, status FROM bil_invoices WHERE subscription_id = $1", [id])).rows[0];
      const [aliceInv, bobInv] = [await invoiceOfSub(aliceSub), await invoiceOfSub(bobSub)];
      // Both retries due now; while alice's is being charged, bob cancels now (his invoice is voided).
      await client.pool.query("UPDATE bil_invoices SET next_attempt_at = now() - interval '1 second' WHERE invoice_id = ANY($1::uuid[])", [[aliceInv.invoice_id, bobInv.invoice_id]]);
      onCharge = async (reference) => {
        if (!reference.endsWith(aliceInv.invoice_id)) return;
        if (meanwhile === "bob cancels now") await billing.cancel(bob, bobSub, false);
        else await client.pool.query("DELETE FROM users WHERE id = $1", [bob]);
      };
      charged.length = 0;
      await billing.runCycle();
      expect(charged).toEqual([`invoice:${aliceInv.invoice_id}`]);
      // A deleted account's invoice is voided by the next cycle, which ends its subscription.
      if (meanwhile === "bob's account is deleted") await billing.runCycle();
      expect((await invoiceOfSub(bobSub)).status).toBe("void");
      expect(charged).toEqual([`invoice:${aliceInv.invoice_id}`]);
    });
  }
});
