/**
 * A payment that completes after dunning gave its invoice up (uncollectible, the subscription
 * `unpaid`): an asynchronous card, a payment that failed and then succeeded on the same intent.
 * Before, billing logged it "left to an operator": the customer had paid a real debt and the invoice
 * stayed uncollectible, the subscription unpaid. Now it is that invoice's payment, as Stripe records
 * it: the invoice is paid (same events as any payment), and the subscription comes back to the state
 * a paid invoice gives (active), unless it ended meanwhile or another invoice still makes it unpaid.
 * Brought back after its period ended, it renews from the next cycle's time, not for the periods it
 * was stopped. The same payment told again changes nothing; another payment of the same invoice is
 * refunded, as for one paid already. Real PostgreSQL, payment-service a stand-in
 * (tests/helpers/billing-rig.ts).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { invoicesOf, paymentEvent, plan, subscriptionOf, useBillingRig } from "../helpers/billing-rig";

const run = randomBytes(3).toString("hex");
const BASIC = `basic-${run}`;
const rig = useBillingRig([plan(BASIC, 1000)]);

const succeeded = (userId: string, invoiceId: string, amount: number, intentId = randomUUID()) => ({
  eventId: `${intentId}:payment.succeeded`, type: "payment.succeeded" as const, intentId, userId, amount, currency: "usd", reference: `invoice:${invoiceId}`, failureCode: null, ts: Date.now(),
});
const apply = (ev: ReturnType<typeof succeeded>) => rig.client.transaction((c) => rig.billing.onPaymentEvent(c, ev));
const eventsOf = async (subscriptionId: string) =>
  (await rig.client.pool.query<{ type: string; status: string; invoice: string | null }>("SELECT payload->>'type' AS type, payload->>'status' AS status, payload->>'invoiceId' AS invoice FROM bil_outbox WHERE payload->>'subscriptionId' = $1 ORDER BY id", [subscriptionId])).rows;

/** Retries every open invoice of the user (declined) until dunning gives them up. */
async function dunToUnpaid(userId: string) {
  for (let i = 0; i < 3; i++) {
    await rig.client.pool.query("UPDATE bil_invoices SET next_attempt_at = now() - interval '1 second' WHERE user_id = $1 AND status = 'open'", [userId]);
    await rig.billing.runCycle();
  }
}

/** A subscription whose first invoice was declined four times: uncollectible, the subscription unpaid. */
async function unpaidSubscription() {
  const userId = randomUUID();
  rig.answer.set(userId, "decline");
  const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_chargeDeclined");
  await dunToUnpaid(userId);
  const [inv] = await invoicesOf(rig.client, userId);
  expect(inv).toMatchObject({ status: "uncollectible", attempts: 4 });
  expect((await subscriptionOf(rig.client, userId)).status).toBe("unpaid");
  return { userId, id, inv };
}

describe("a payment that completes for an uncollectible invoice", () => {
  it("pays the invoice and brings the subscription back to active, with the events of a payment; told again, nothing more", async () => {
    const { userId, id, inv } = await unpaidSubscription();
    const before = (await eventsOf(id)).length;
    const late = succeeded(userId, inv.invoice_id, 1000);
    expect(await apply(late)).toBe(true);
    const [paid] = await invoicesOf(rig.client, userId);
    expect(paid).toMatchObject({ status: "paid", attempts: 4, next_attempt_at: null });
    const row = (await rig.client.pool.query("SELECT paid_at, last_payment_id FROM bil_invoices WHERE invoice_id = $1", [inv.invoice_id])).rows[0];
    expect(row.paid_at).not.toBeNull();
    expect(row.last_payment_id).toBe(late.intentId);
    expect((await rig.repo.subscription(id))!).toMatchObject({ status: "active", paused_at: null });
    expect((await eventsOf(id)).slice(before)).toEqual([
      { type: "invoice.paid", status: "active", invoice: inv.invoice_id },
      { type: "subscription.updated", status: "active", invoice: null },
    ]);
    expect(rig.refunds.filter((r) => r.intentId === late.intentId)).toEqual([]);

    // Redelivered, and told again under another event id: applied once, never refunded.
    expect(await apply(late)).toBe(false);
    await apply({ ...late, eventId: randomUUID() });
    expect((await eventsOf(id)).length).toBe(before + 2);
    expect(rig.refunds.filter((r) => r.intentId === late.intentId)).toEqual([]);

    // Another payment of the same invoice is not owed: refunded, as for any invoice paid already.
    const another = succeeded(userId, inv.invoice_id, 1000);
    await apply(another);
    expect(rig.refunds.filter((r) => r.intentId === another.intentId)).toMatchObject([{ intentId: another.intentId, amount: 1000n, idempotencyKey: `invoice-refund-${inv.invoice_id}-${another.intentId}` }]);
    expect((await rig.repo.subscription(id))!.status).toBe("active");
  });

  it("brought back after its period ended, the subscription renews from the next cycle's time, once, not for the periods it was stopped", async () => {
    const { userId, id, inv } = await unpaidSubscription();
    // Three months unpaid: the period the invoice paid ended long ago.
    await rig.client.pool.query("UPDATE bil_subscriptions SET anchor = now() - interval '4 months', period_start = now() - interval '4 months', period_end = now() - interval '3 months' WHERE subscription_id = $1", [id]);
    rig.answer.set(userId, "pay");
    await apply(succeeded(userId, inv.invoice_id, 1000));
    expect((await rig.repo.subscription(id))!.status).toBe("active");
    const cycleAt = Date.now();
    for (let i = 0; i < 3; i++) await rig.billing.runCycle();
    const invoices = await invoicesOf(rig.client, userId);
    expect(invoices.map((i) => i.status)).toEqual(["paid", "paid"]);
    const sub = (await rig.repo.subscription(id))!;
    expect(sub).toMatchObject({ status: "active", paused_at: null });
    // The new period starts at the renewal, not at the old period's end (three months ago).
    expect(Math.abs(sub.period_start.getTime() - cycleAt)).toBeLessThan(60_000);
    expect(sub.period_end.getTime()).toBeGreaterThan(Date.now() + 27 * 86_400_000);
    expect(rig.charges.filter((c) => c.userId === userId && c.idempotencyKey.startsWith(`invoice-${invoices[1].invoice_id}-`))).toHaveLength(1);
  });

  it("of a subscription cancelled meanwhile: the invoice is paid, the subscription stays ended", async () => {
    const { userId, id, inv } = await unpaidSubscription();
    await rig.billing.cancel(userId, id, false);
    const late = succeeded(userId, inv.invoice_id, 1000);
    await apply(late);
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid"]);
    expect((await rig.repo.subscription(id))!.status).toBe("canceled");
    expect(rig.refunds.filter((r) => r.intentId === late.intentId)).toEqual([]);
    // Subscribing again after the payment is a new subscription; the old one is not revived by it.
    rig.answer.set(userId, "pay");
    await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
    expect((await rig.repo.subscription(id))!.status).toBe("canceled");
  });

  it("a subscription unpaid for two invoices stays unpaid until both are paid", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_chargeDeclined");
    // The renewal comes while the first invoice is in dunning (past_due renews): two invoices declined.
    await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '31 days', period_end = now() - interval '1 second' WHERE subscription_id = $1", [id]);
    await rig.billing.runCycle();
    await dunToUnpaid(userId);
    const [first, second] = await invoicesOf(rig.client, userId);
    expect([first.status, second.status]).toEqual(["uncollectible", "uncollectible"]);
    await apply(succeeded(userId, first.invoice_id, 1000));
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid", "uncollectible"]);
    expect((await rig.repo.subscription(id))!.status).toBe("unpaid");
    await apply(succeeded(userId, second.invoice_id, 1000));
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid", "paid"]);
    expect((await rig.repo.subscription(id))!.status).toBe("active");
  });

  it("of an open invoice whose failure of the same payment counted already (closed, then paid): paid, its attempt counted once; a failure told twice counts once", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    await rig.billing.subscribe(userId, BASIC, "pm_card_chargeDeclined");
    const [inv] = await invoicesOf(rig.client, userId);
    expect(inv).toMatchObject({ status: "open", attempts: 1 });
    // Attempt 2 fails (payment-service's reconciler closed it: never_reached_processor), told twice under two event ids.
    const intentId = randomUUID();
    const closed = paymentEvent("payment.failed", userId, inv.invoice_id, intentId, { failureCode: "never_reached_processor" });
    expect(await rig.apply(closed)).toBe(true);
    expect(await rig.apply({ ...closed, eventId: randomUUID() })).toBe(false);
    expect((await invoicesOf(rig.client, userId))[0]).toMatchObject({ status: "open", attempts: 2 });
    // The processor charged it after all: the invoice is paid by it, attempts still 2.
    expect(await apply(succeeded(userId, inv.invoice_id, 1000, intentId))).toBe(true);
    expect((await invoicesOf(rig.client, userId))[0]).toMatchObject({ status: "paid", attempts: 2, next_attempt_at: null });
  });
});
