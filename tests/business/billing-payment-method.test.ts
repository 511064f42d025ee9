/**
 * Changing a live subscription's card (`POST /api/billing/subscriptions/:id/payment-method`), on a
 * real PostgreSQL with stand-ins for payment-service and usage-monitoring (tests/helpers/billing-rig.ts).
 * Before, there was no way to: a user whose card was declined could only wait for dunning to give
 * up, or cancel and subscribe again. Now the subscription's charges go to the new card, and the
 * invoices waiting for a dunning retry are retried on it at once; only a card saved to the user is
 * taken, only on their own subscription that has not ended.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { invoicesOf, plan, subscriptionOf, useBillingRig } from "../helpers/billing-rig";

const run = randomBytes(3).toString("hex");
const BASIC = `basic-${run}`;
const rig = useBillingRig([plan(BASIC, 1000)]);

/** A subscription whose renewal was declined: past_due, the renewal open with a retry a day away. */
async function declinedRenewal() {
  const userId = randomUUID();
  const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_old");
  await rig.client.pool.query("UPDATE bil_subscriptions SET period_start = now() - interval '1 month', period_end = now() - interval '1 second' WHERE subscription_id = $1", [id]);
  rig.answer.set(userId, "decline");
  await rig.billing.runCycle();
  const [, renewal] = await invoicesOf(rig.client, userId);
  expect(renewal).toMatchObject({ status: "open", attempts: 1 });
  expect(renewal.next_attempt_at!.getTime()).toBeGreaterThan(Date.now());
  expect((await subscriptionOf(rig.client, userId)).status).toBe("past_due");
  return { userId, id, renewal };
}

const chargesOf = (userId: string) => rig.charges.filter((c) => c.userId === userId);

describe("changing a subscription's card", () => {
  it("retries the declined renewal on the new card at once, and charges it from then on", async () => {
    const { userId, id, renewal } = await declinedRenewal();
    rig.answer.set(userId, "pay");
    const sub = await rig.billing.changePaymentMethod(userId, id, "pm_card_new");
    expect(sub).toMatchObject({ status: "active", payment_method: "pm_card_new" });
    const [, paid] = await invoicesOf(rig.client, userId);
    expect(paid).toMatchObject({ invoice_id: renewal.invoice_id, status: "paid", attempts: 2 });
    const last = chargesOf(userId).at(-1)!;
    expect(last).toMatchObject({ paymentMethod: "pm_card_new", idempotencyKey: `invoice-${renewal.invoice_id}-2` });

    // The next renewal goes to the new card too.
    await rig.client.pool.query("UPDATE bil_subscriptions SET period_end = now() - interval '1 second' WHERE subscription_id = $1", [id]);
    await rig.billing.runCycle();
    expect(chargesOf(userId).at(-1)!.paymentMethod).toBe("pm_card_new");
  });

  it("declined on the new card too, the retry is one more dunning attempt", async () => {
    const { userId, id, renewal } = await declinedRenewal();
    await rig.billing.changePaymentMethod(userId, id, "pm_card_also_bad");
    const [, open] = await invoicesOf(rig.client, userId);
    expect(open).toMatchObject({ invoice_id: renewal.invoice_id, status: "open", attempts: 2 });
    expect(open.next_attempt_at!.getTime()).toBeGreaterThan(Date.now());
  });

  it("with nothing owed it only changes the card: nothing is charged", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_old");
    const before = chargesOf(userId).length;
    expect(await rig.billing.changePaymentMethod(userId, id, "pm_card_new")).toMatchObject({ status: "active", payment_method: "pm_card_new" });
    expect(chargesOf(userId)).toHaveLength(before);
  });

  it("an attempt in flight is left to its outcome: not sent again with another card under its key", async () => {
    const { userId, id, renewal } = await declinedRenewal();
    // The cycle sent attempt 2 (no retry time while its outcome is on its way).
    await rig.client.pool.query("UPDATE bil_invoices SET next_attempt_at = NULL WHERE invoice_id = $1", [renewal.invoice_id]);
    const before = chargesOf(userId).length;
    await rig.billing.changePaymentMethod(userId, id, "pm_card_new");
    expect(chargesOf(userId)).toHaveLength(before);
  });

  it("refuses a card not saved to the user, changing nothing (404 naming paymentMethod)", async () => {
    const { userId, id } = await declinedRenewal();
    rig.notSaved.add("pm_card_someone_elses");
    const before = chargesOf(userId).length;
    await expect(rig.billing.changePaymentMethod(userId, id, "pm_card_someone_elses")).rejects.toMatchObject({ statusCode: 404, code: "PAYMENT_METHOD_NOT_FOUND", field: "paymentMethod" });
    expect(await subscriptionOf(rig.client, userId)).toMatchObject({ payment_method: "pm_card_old", status: "past_due" });
    expect(chargesOf(userId)).toHaveLength(before);
  });

  it("refuses another user's subscription as not found", async () => {
    const { id } = await declinedRenewal();
    await expect(rig.billing.changePaymentMethod(randomUUID(), id, "pm_card_new")).rejects.toMatchObject({ statusCode: 404, code: "NOT_FOUND" });
  });

  it("refuses an ended subscription (409): subscribing again is how a card comes back", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_old");
    await rig.billing.cancel(userId, id, false);
    await expect(rig.billing.changePaymentMethod(userId, id, "pm_card_new")).rejects.toMatchObject({ statusCode: 409, code: "SUBSCRIPTION_CANCELED", field: "paymentMethod" });
    expect((await subscriptionOf(rig.client, userId)).payment_method).toBe("pm_card_old");
  });
});
