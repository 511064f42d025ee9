/**
 * A refund billing asks for (a payment of an invoice void or paid by another payment: give-backs.ts)
 * that payment-service answers `pending` has not gone back yet: billing took it for done as soon as
 * payment-service answered. Each give-back is now recorded with its refund's status (bil_give_backs,
 * migration 0479): pending until `payment.refunded` (succeeded: nothing owed, no credit), or
 * `payment.refund_failed` / `payment.refund_reversed` (failed: its amount is credit on the
 * subscription, once). Replays and late, out-of-order events never move it back nor credit twice.
 * Real PostgreSQL, payment-service a stand-in (tests/helpers/billing-rig.ts).
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
const giveBack = async (intentId: string) =>
  (await rig.client.pool.query<{ status: string; refund_id: string | null; amount: string }>("SELECT status, refund_id, amount FROM bil_give_backs WHERE intent_id = $1", [intentId])).rows;
const credit = async (userId: string) => (await subscriptionOf(rig.client, userId)).credit_balance;

/** A paid subscription and a second payment of its paid invoice, whose refund payment-service answers pending. */
async function pendingGiveBack() {
  const userId = randomUUID();
  await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
  const [inv] = await invoicesOf(rig.client, userId);
  expect(inv.status).toBe("paid");
  const intentId = randomUUID();
  rig.refundsPending.add(intentId);
  const succeeded = event("payment.succeeded", userId, inv.invoice_id, intentId);
  await apply(succeeded);
  const [asked] = rig.refunds.filter((r) => r.intentId === intentId);
  expect(await giveBack(intentId)).toEqual([{ status: "pending", refund_id: asked.refundId, amount: "1000" }]);
  // The same event redelivered (the consumer's retry under another id): asked again with the same key, still one pending give-back.
  await apply({ ...succeeded, eventId: randomUUID() });
  expect(await giveBack(intentId)).toEqual([{ status: "pending", refund_id: asked.refundId, amount: "1000" }]);
  return { userId, inv, intentId, refundId: asked.refundId };
}

describe("a give-back refund answered pending", () => {
  it("stays pending, and is done once payment.refunded comes: no credit, replays change nothing", async () => {
    const { userId, inv, intentId, refundId } = await pendingGiveBack();
    expect(await credit(userId)).toBe("0");
    const refunded = event("payment.refunded", userId, inv.invoice_id, intentId, { eventId: `refund:${refundId}`, refundId, refundedAmount: 1000 });
    expect(await apply(refunded)).toBe(true);
    expect((await giveBack(intentId))[0].status).toBe("succeeded");
    expect(await apply(refunded)).toBe(false);
    expect(await apply({ ...refunded, eventId: randomUUID() })).toBe(false);
    // Another refund of that payment (not billing's) told: not this give-back.
    expect(await apply(event("payment.refunded", userId, inv.invoice_id, intentId, { refundId: randomUUID(), refundedAmount: 1000 }))).toBe(false);
    expect([(await giveBack(intentId))[0].status, await credit(userId)]).toEqual(["succeeded", "0"]);
    // It fails after succeeding (reversed): the money is with the platform again, credit once.
    const reversed = event("payment.refund_reversed", userId, inv.invoice_id, intentId, { eventId: `refund:${refundId}:reversed`, refundId, refundedAmount: 1000 });
    expect(await apply(reversed)).toBe(true);
    expect(await apply(reversed)).toBe(false);
    expect([(await giveBack(intentId))[0].status, await credit(userId)]).toEqual(["failed", "1000"]);
  });

  it("that fails is credit on the subscription, once; its late payment.refunded never moves it back", async () => {
    const { userId, inv, intentId, refundId } = await pendingGiveBack();
    const failed = event("payment.refund_failed", userId, inv.invoice_id, intentId, { eventId: `refund:${refundId}:failed`, refundId, refundedAmount: 1000, failureCode: "processor_canceled" });
    expect(await apply(failed)).toBe(true);
    expect([(await giveBack(intentId))[0].status, await credit(userId)]).toEqual(["failed", "1000"]);
    expect(await apply(failed)).toBe(false);
    expect(await apply(event("payment.refunded", userId, inv.invoice_id, intentId, { eventId: `refund:${refundId}`, refundId, refundedAmount: 1000 }))).toBe(false);
    expect([(await giveBack(intentId))[0].status, await credit(userId)]).toEqual(["failed", "1000"]);
  });

  it("booked short of what billing asked (an operator's settle at the processor's amount): the rest is credit at once, its reversal credits what went back", async () => {
    const { userId, inv, intentId, refundId } = await pendingGiveBack();
    const refunded = event("payment.refunded", userId, inv.invoice_id, intentId, { eventId: `refund:${refundId}`, refundId, refundedAmount: 600 });
    expect(await apply(refunded)).toBe(true);
    expect(await apply(refunded)).toBe(false);
    expect([(await giveBack(intentId))[0].status, await credit(userId)]).toEqual(["succeeded", "400"]);
    // It fails after succeeding: the 600 that went back is with the platform again; in all, the 1000 asked.
    const reversed = event("payment.refund_reversed", userId, inv.invoice_id, intentId, { eventId: `refund:${refundId}:reversed`, refundId, refundedAmount: 600 });
    expect(await apply(reversed)).toBe(true);
    expect(await apply(reversed)).toBe(false);
    expect([(await giveBack(intentId))[0].status, await credit(userId)]).toEqual(["failed", "1000"]);
  });

  it("booked in another currency than the invoice's: taken as returned in full (nothing to compare), its reversal credits the amount asked", async () => {
    const { userId, inv, intentId, refundId } = await pendingGiveBack();
    expect(await apply(event("payment.refunded", userId, inv.invoice_id, intentId, { eventId: `refund:${refundId}`, refundId, refundedAmount: 300, currency: "eur" }))).toBe(true);
    expect([(await giveBack(intentId))[0].status, await credit(userId)]).toEqual(["succeeded", "0"]);
    expect(await apply(event("payment.refund_reversed", userId, inv.invoice_id, intentId, { refundId, refundedAmount: 300, currency: "eur" }))).toBe(true);
    expect([(await giveBack(intentId))[0].status, await credit(userId)]).toEqual(["failed", "1000"]);
  });

  it("answered succeeded at once: recorded succeeded; its payment.refunded changes nothing", async () => {
    const userId = randomUUID();
    await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
    const [inv] = await invoicesOf(rig.client, userId);
    const intentId = randomUUID();
    await apply(event("payment.succeeded", userId, inv.invoice_id, intentId));
    const [asked] = rig.refunds.filter((r) => r.intentId === intentId);
    expect(await giveBack(intentId)).toEqual([{ status: "succeeded", refund_id: asked.refundId, amount: "1000" }]);
    expect(await apply(event("payment.refunded", userId, inv.invoice_id, intentId, { refundId: asked.refundId, refundedAmount: 1000 }))).toBe(false);
    expect(await credit(userId)).toBe("0");
  });
});
