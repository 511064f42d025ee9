/**
 * Credit consumed by an invoice that is later voided goes back to the user, on a real PostgreSQL
 * with stand-ins for payment-service and usage-monitoring (tests/helpers/billing-rig.ts). Before,
 * cancelling now voided the open renewal and the credit it had consumed was gone: the balance
 * stayed 0 and the final invoice was charged in full. The credit comes back once however often the
 * void is retried or raced (the database decides: the UPDATE that turns the invoice from open to
 * void credits it), and a subscription taken later starts with it.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { invoicesOf, plan, subscriptionOf, useBillingRig } from "../helpers/billing-rig";

const run = randomBytes(3).toString("hex");
const BASIC = `basic-${run}`;
/** 5 requests included, then 1.00 per started block of 5: 60 requests cost 11 blocks. */
const METERED = `metered-${run}`;
/** A plan in yen (no minor unit): 1000 yen is about 6.70 dollars, not 10.00. */
const YEN = `yen-${run}`;
const rig = useBillingRig([plan(BASIC, 1000), plan(METERED, 1000, { included: 5, blockSize: 5, blockAmount: 100 }), { ...plan(YEN, 1000), currency: "jpy" }]);

/**
 * A subscription to `planId` with 600 of credit, whose renewal (1000: 600 from credit, 400 to pay)
 * was declined and is open; `requests` metered in the period that renewal ended.
 */
async function renewalOpenWithCredit(planId: string, requests = 0) {
  const userId = randomUUID();
  const { subscription_id: id } = await rig.billing.subscribe(userId, planId, "pm_card_visa");
  await rig.client.pool.query("UPDATE bil_subscriptions SET credit_balance = 600, period_start = now() - interval '1 month', period_end = now() - interval '1 second' WHERE subscription_id = $1", [id]);
  if (requests) rig.use(userId, requests, new Date(Date.now() - 2000));
  rig.answer.set(userId, "decline");
  await rig.billing.runCycle();
  const [, renewal] = await invoicesOf(rig.client, userId);
  expect(renewal).toMatchObject({ status: "open", creditApplied: 600 });
  expect((await subscriptionOf(rig.client, userId)).credit_balance).toBe("0");
  return { userId, id, renewal };
}

describe("an invoice voided after consuming credit", () => {
  it("cancelling now voids the renewal and gives its credit back", async () => {
    const { userId, id } = await renewalOpenWithCredit(BASIC);
    await rig.billing.cancel(userId, id, false);
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid", "void"]);
    expect(await subscriptionOf(rig.client, userId)).toMatchObject({ status: "canceled", credit_balance: "600" });
    // A retried cancellation changes nothing: it is told the subscription has ended (409 since session 65).
    await expect(rig.billing.cancel(userId, id, false)).rejects.toMatchObject({ statusCode: 409, code: "SUBSCRIPTION_CANCELED", field: "id" });
    expect((await subscriptionOf(rig.client, userId)).credit_balance).toBe("600");
  });

  it("the credit given back pays the final invoice of the usage first", async () => {
    const { userId, id } = await renewalOpenWithCredit(METERED, 60);
    await rig.billing.cancel(userId, id, false);
    const [, voided, final] = await invoicesOf(rig.client, userId);
    expect(voided).toMatchObject({ status: "void", creditApplied: 600 });
    // The renewal's usage line (60 requests: 1100) moves to the final invoice, 600 of it from credit.
    expect(final).toMatchObject({ subtotal: 1100, creditApplied: 600, amountDue: 500 });
    expect((await subscriptionOf(rig.client, userId)).credit_balance).toBe("0");
  });

  it("two cancellations at once give it back once", async () => {
    const { userId, id } = await renewalOpenWithCredit(BASIC);
    // One ends it; the other, serialized behind it, finds it ended (409 since session 65).
    const outcomes = await Promise.allSettled([rig.billing.cancel(userId, id, false), rig.billing.cancel(userId, id, false)]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect(outcomes.find((o) => o.status === "rejected")).toMatchObject({ reason: { statusCode: 409, code: "SUBSCRIPTION_CANCELED" } });
    expect((await subscriptionOf(rig.client, userId)).credit_balance).toBe("600");
  });

  it("voids racing in two transactions credit once: the one that turns the invoice void", async () => {
    const { userId, id } = await renewalOpenWithCredit(BASIC);
    // Without the subscription's lock the use cases take, the voids themselves must not double it.
    const voids = await Promise.all([0, 1].map(() => rig.client.transaction((c) => rig.repo.voidOpenInvoices(c, id))));
    expect(voids.map((v) => v.length).sort()).toEqual([0, 1]);
    await rig.repo.voidOpenInvoices(rig.client.pool, id);
    expect((await subscriptionOf(rig.client, userId)).credit_balance).toBe("600");
  });

  it("a subscription taken after the cancellation starts with the credit", async () => {
    const { userId, id } = await renewalOpenWithCredit(BASIC);
    await rig.billing.cancel(userId, id, false);
    rig.answer.set(userId, "pay");
    await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
    const invoices = await invoicesOf(rig.client, userId);
    expect(invoices[2]).toMatchObject({ status: "paid", subtotal: 1000, creditApplied: 600, amountDue: 400 });
    const subs = (await rig.client.pool.query("SELECT status, credit_balance FROM bil_subscriptions WHERE user_id = $1 ORDER BY created_at", [userId])).rows;
    expect(subs).toEqual([{ status: "canceled", credit_balance: "0" }, { status: "active", credit_balance: "0" }]);
  });
});

describe("credit left on ended subscriptions", () => {
  it("is taken only by a new subscription in its currency: 900 yen of credit is not 900 cents", async () => {
    // Before, a subscription took the credit of every ended one as a number, whatever its currency:
    // 900 yen (about 6 dollars) paid 9.00 dollars of a dollar plan, and dollars became as many yen.
    const userId = randomUUID();
    const { subscription_id: yenSub } = await rig.billing.subscribe(userId, YEN, "pm_card_visa");
    await rig.client.pool.query("UPDATE bil_subscriptions SET credit_balance = 900 WHERE subscription_id = $1", [yenSub]);
    await rig.billing.cancel(userId, yenSub, false);
    const usd = await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
    expect(usd.credit_balance).toBe("0");
    expect((await invoicesOf(rig.client, userId))[1]).toMatchObject({ subtotal: 1000, creditApplied: 0, amountDue: 1000 });
    // Back on a yen plan, the yen credit is spent.
    await rig.billing.cancel(userId, usd.subscription_id, false);
    await rig.billing.subscribe(userId, YEN, "pm_card_visa");
    expect((await invoicesOf(rig.client, userId))[2]).toMatchObject({ subtotal: 1000, creditApplied: 900, amountDue: 100 });
  });
});

describe("a payment that completes for an invoice no longer open", () => {
  const succeeded = (userId: string, invoiceId: string, amount: number, intentId = randomUUID()) => ({
    eventId: `${intentId}:payment.succeeded`, type: "payment.succeeded" as const, intentId, userId, amount, currency: "usd", reference: `invoice:${invoiceId}`, failureCode: null, ts: Date.now(),
  });

  it("is refunded when the invoice was voided (its charge completed after the user cancelled), once", async () => {
    const { userId, id, renewal } = await renewalOpenWithCredit(BASIC);
    await rig.billing.cancel(userId, id, false);
    const ev = succeeded(userId, renewal.invoice_id, 400);
    await rig.client.transaction((c) => rig.billing.onPaymentEvent(c, ev));
    await rig.client.transaction((c) => rig.billing.onPaymentEvent(c, ev)); // redelivered
    expect(rig.refunds.filter((r) => r.intentId === ev.intentId)).toMatchObject([{ intentId: ev.intentId, amount: 400n, idempotencyKey: `invoice-refund-${renewal.invoice_id}-${ev.intentId}` }]);
    expect((await invoicesOf(rig.client, userId))[1].status).toBe("void");
  });

  it("is refunded when the invoice was paid by another payment; an uncollectible one is paid by it, not refunded", async () => {
    const { userId, renewal } = await renewalOpenWithCredit(BASIC);
    await rig.client.transaction((c) => rig.billing.onPaymentEvent(c, succeeded(userId, renewal.invoice_id, 400)));
    expect((await invoicesOf(rig.client, userId))[1].status).toBe("paid");
    const twice = succeeded(userId, renewal.invoice_id, 400);
    await rig.client.transaction((c) => rig.billing.onPaymentEvent(c, twice));
    expect(rig.refunds.filter((r) => r.intentId === twice.intentId)).toHaveLength(1);

    const other = await renewalOpenWithCredit(BASIC);
    await rig.client.pool.query("UPDATE bil_invoices SET status = 'uncollectible' WHERE invoice_id = $1", [other.renewal.invoice_id]);
    const late = succeeded(other.userId, other.renewal.invoice_id, 400);
    await rig.client.transaction((c) => rig.billing.onPaymentEvent(c, late));
    expect(rig.refunds.filter((r) => r.intentId === late.intentId)).toEqual([]);
    expect((await invoicesOf(rig.client, other.userId))[1].status).toBe("paid"); // tests/business/billing-late-payment.test.ts
  });
});
