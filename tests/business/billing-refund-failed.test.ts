/**
 * A refund billing asked for that did not go out (payment-service's `payment.refund_failed`: the
 * processor failed or canceled it before it succeeded; `payment.refund_reversed`: it failed after
 * succeeding, the money came back). Billing refunds a payment of an invoice that is void or paid by
 * another payment (nothing is owed for it); before, such a refund failing at the processor was never
 * seen, and the customer's money stayed with the platform. Now its amount is credit on the invoice's
 * subscription, spent by the next invoice, once. Only a give-back billing asked for, by the refund the
 * event names: before (session 50's finding), any failed refund of any payment of a void invoice (or of
 * one paid by another payment) was credited, an operator's or a dashboard refund of a payment billing
 * never gave back too, and a second refund tried by hand after billing's failed was credited again. A
 * refund of the payment that paid the invoice (an admin's) changes nothing in billing. Real
 * PostgreSQL, payment-service a stand-in (tests/helpers/billing-rig.ts).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { PaymentEventMsg } from "../../services/src/business/events";
import { invoicesOf, paymentEvent, plan, subscriptionOf, useBillingRig } from "../helpers/billing-rig";

const run = randomBytes(3).toString("hex");
const BASIC = `basic-${run}`;
const rig = useBillingRig([plan(BASIC, 1000)]);
const apply = (ev: PaymentEventMsg) => rig.apply(ev);
const event = paymentEvent;

describe("a refund billing asked for that did not go out", () => {
  it("becomes credit on the subscription, once, spent by the next invoice; the paying payment's refund changes nothing", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
    const [inv] = await invoicesOf(rig.client, userId);
    expect(inv.status).toBe("paid");
    const paidBy = (await rig.client.pool.query("SELECT last_payment_id FROM bil_invoices WHERE invoice_id = $1", [inv.invoice_id])).rows[0].last_payment_id;

    // A second payment of the paid invoice: not owed, given back.
    const another = event("payment.succeeded", userId, inv.invoice_id, randomUUID());
    await apply(another);
    const asked = rig.refunds.filter((r) => r.intentId === another.intentId);
    expect(asked).toHaveLength(1);

    // The processor failed that refund after it succeeded (a closed card): the 1000 is credit now, once.
    const refundId = asked[0].refundId;
    const reversed = event("payment.refund_reversed", userId, inv.invoice_id, another.intentId, { eventId: `refund:${refundId}:reversed`, refundedAmount: 1000, refundId, failureCode: "expired_or_canceled_card" });
    expect(await apply(reversed)).toBe(true);
    expect((await subscriptionOf(rig.client, userId)).credit_balance).toBe("1000");
    expect(await apply(reversed)).toBe(false);
    // Another refund of that payment, tried by hand after billing's failed, failing too: not credited again.
    expect(await apply(event("payment.refund_failed", userId, inv.invoice_id, another.intentId, { refundedAmount: 1000, refundId: randomUUID() }))).toBe(false);
    // A refund of the payment that paid the invoice (an admin's) failing: the invoice stays paid, no credit.
    expect(await apply(event("payment.refund_failed", userId, inv.invoice_id, paidBy, { refundedAmount: 1000, refundId: randomUUID() }))).toBe(false);
    // Another payer, or no refunded amount: not applied.
    expect(await apply(event("payment.refund_failed", randomUUID(), inv.invoice_id, another.intentId, { refundedAmount: 1000 }))).toBe(false);
    expect(await apply(event("payment.refund_failed", userId, inv.invoice_id, another.intentId))).toBe(false);
    expect((await subscriptionOf(rig.client, userId)).credit_balance).toBe("1000");

    // The renewal is paid from the credit: nothing charged for it.
    await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '1 month', period_end = now() - interval '1 second' WHERE subscription_id = $1", [id]);
    const charged = rig.charges.filter((c) => c.userId === userId).length;
    await rig.billing.runCycle();
    const [, renewal] = await invoicesOf(rig.client, userId);
    expect(renewal).toMatchObject({ status: "paid", creditApplied: 1000 });
    expect(rig.charges.filter((c) => c.userId === userId)).toHaveLength(charged);
    expect((await subscriptionOf(rig.client, userId)).credit_balance).toBe("0");
  });

  it("of a void invoice's payment: credit too, and a new subscription takes it once this one ended", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_chargeDeclined");
    const [inv] = await invoicesOf(rig.client, userId);
    expect(inv.status).toBe("open");
    await rig.billing.cancel(userId, id, false);
    expect((await invoicesOf(rig.client, userId))[0].status).toBe("void");
    const late = event("payment.succeeded", userId, inv.invoice_id, randomUUID());
    await apply(late);
    const [asked] = rig.refunds.filter((r) => r.intentId === late.intentId);
    expect(await apply(event("payment.refund_failed", userId, inv.invoice_id, late.intentId, { refundedAmount: 1000, refundId: asked.refundId, failureCode: "processor_canceled" }))).toBe(true);
    expect((await subscriptionOf(rig.client, userId)).credit_balance).toBe("1000");
    rig.answer.set(userId, "pay");
    await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
    const invoices = await invoicesOf(rig.client, userId);
    expect(invoices[invoices.length - 1]).toMatchObject({ status: "paid", creditApplied: 1000 });
  });

  it("of a payment billing did not give back (its refund refused, left to an operator): no credit when the operator's refund fails", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_chargeDeclined");
    const [inv] = await invoicesOf(rig.client, userId);
    await rig.billing.cancel(userId, id, false);
    expect((await invoicesOf(rig.client, userId))[0].status).toBe("void");
    const late = event("payment.succeeded", userId, inv.invoice_id, randomUUID());
    rig.refundsRefused.add(late.intentId);
    await apply(late);
    expect((await rig.client.pool.query("SELECT count(*)::int AS n FROM bil_give_backs WHERE intent_id = $1", [late.intentId])).rows[0].n).toBe(0);
    // The operator refunds it by hand (or on the processor's dashboard), and that refund fails: billing asked for none.
    for (const type of ["payment.refund_failed", "payment.refund_reversed"] as const)
      expect(await apply(event(type, userId, inv.invoice_id, late.intentId, { refundedAmount: 1000, refundId: randomUUID() }))).toBe(false);
    // Nor does a failure naming no refund, of a payment billing did give back.
    const given = event("payment.succeeded", userId, inv.invoice_id, randomUUID());
    await apply(given);
    expect(await apply(event("payment.refund_failed", userId, inv.invoice_id, given.intentId, { refundedAmount: 1000 }))).toBe(false);
    expect((await subscriptionOf(rig.client, userId)).credit_balance).toBe("0");
  });
});
