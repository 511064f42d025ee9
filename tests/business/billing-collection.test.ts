/**
 * How billing collects an invoice, on a real PostgreSQL with stand-ins for payment-service
 * (tests/helpers/billing-rig.ts):
 *   - a charge payment-service refuses (a 4xx: IDEMPOTENCY_KEY_REUSED, a validation error) is a
 *     failed attempt, so dunning moves on to the next attempt and, at the end, to uncollectible, each
 *     counted once in bil_failed_attempts (`refused:<key>`; since session 53, before only failed payments were).
 *     Before, billing logged it and sent the same request at every cycle: a user who had taken the
 *     key of the next attempt (`invoice-<id>-2`, read off their invoices) kept the invoice open, the
 *     subscription past_due (counted as paying), for ever;
 *   - an invoice with nothing to pay (a free plan, all of it from credit) is paid as it is created
 *     and the subscription moves as after a payment (before, it stayed incomplete: only payment
 *     events moved it); a subscription with another invoice still open stays as it is;
 *   - every charge goes to the user's current payment method, the one of their newest subscription:
 *     before, an invoice was charged to the method of the subscription it belongs to, so
 *     resubscribing from `unpaid` with a new card had the old subscription's final (usage) invoice,
 *     and each of its dunning retries, charged to the card that had failed.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { invoicesOf, plan, subscriptionOf, useBillingRig } from "../helpers/billing-rig";
import { refusesCharge } from "../../services/src/services/billing-service/domain/invoices";

const run = randomBytes(3).toString("hex");
const BASIC = `basic-${run}`;
const FREE = `free-${run}`;
/** 5 requests included, then 1.00 per started block of 5: 60 requests cost 11 blocks. */
const METERED = `metered-${run}`;
const DAY_MS = 86_400_000;

const rig = useBillingRig([
  plan(BASIC, 1000),
  plan(FREE, 0),
  plan(METERED, 1000, { included: 5, blockSize: 5, blockAmount: 100 }),
]);

/** Makes the invoice's next attempt due and runs the cycle. */
async function retryDue(invoiceId: string) {
  await rig.client.pool.query("UPDATE bil_invoices SET next_attempt_at = now() - interval '1 second' WHERE invoice_id = $1", [invoiceId]);
  await rig.billing.runCycle();
}

describe("a charge payment-service refuses", () => {
  it("is a failed attempt: dunning schedules the next one with its own key, then gives up", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    await rig.billing.subscribe(userId, BASIC, "pm_card_chargeDeclined");
    let [inv] = await invoicesOf(rig.client, userId);
    expect(inv).toMatchObject({ status: "open", attempts: 1 });
    // From now on payment-service refuses the request (e.g. the user holds attempt 2's key).
    rig.answer.set(userId, "refuse");
    for (const [attempt, daysToNext] of [[2, 3], [3, 5]] as const) {
      const t0 = Date.now();
      await retryDue(inv.invoice_id);
      [inv] = await invoicesOf(rig.client, userId);
      expect(inv).toMatchObject({ status: "open", attempts: attempt });
      expect(inv.next_attempt_at!.getTime()).toBeGreaterThanOrEqual(t0 + daysToNext * DAY_MS - 1000);
      expect((await subscriptionOf(rig.client, userId)).status).toBe("past_due");
    }
    await retryDue(inv.invoice_id);
    [inv] = await invoicesOf(rig.client, userId);
    expect(inv).toMatchObject({ status: "uncollectible", attempts: 4, next_attempt_at: null });
    expect((await subscriptionOf(rig.client, userId)).status).toBe("unpaid");
    // One request per attempt, each with the attempt's key.
    expect(rig.charges.filter((c) => c.userId === userId).map((c) => c.idempotencyKey)).toEqual([1, 2, 3, 4].map((n) => `invoice-${inv.invoice_id}-${n}`));
    const events = (await rig.client.pool.query("SELECT payload->>'type' AS type, payload->>'attempts' AS attempts FROM bil_outbox WHERE payload->>'invoiceId' = $1 ORDER BY id", [inv.invoice_id])).rows;
    expect(events.map((e) => `${e.type}:${e.attempts ?? ""}`)).toEqual(["invoice.created:", "invoice.payment_failed:1", "invoice.payment_failed:2", "invoice.payment_failed:3", "invoice.uncollectible:4"]);
    // Each attempt counted once in bil_failed_attempts: the declined payment by its id, each refusal by its key.
    const counted = (await rig.client.pool.query("SELECT intent_id, attempt FROM bil_failed_attempts WHERE invoice_id = $1 ORDER BY attempt", [inv.invoice_id])).rows;
    expect(counted.map((r) => r.attempt)).toEqual([1, 2, 3, 4]);
    expect(counted.slice(1).map((r) => r.intent_id)).toEqual([2, 3, 4].map((n) => `refused:invoice-${inv.invoice_id}-${n}`));
    expect(counted[0].intent_id).not.toMatch(/^refused:/);
  });

  it("a refusal is a 4xx about the request; in progress, throttled, unconfigured and 5xx are retried as they are", () => {
    expect(refusesCharge(409, "IDEMPOTENCY_KEY_REUSED")).toBe(true);
    expect(refusesCharge(400, "VALIDATION_ERROR")).toBe(true);
    expect(refusesCharge(409, "IDEMPOTENCY_KEY_IN_USE")).toBe(false);
    expect(refusesCharge(429, "RATE_LIMITED")).toBe(false);
    expect(refusesCharge(404, "PROCESSOR_NOT_CONFIGURED")).toBe(false);
    expect(refusesCharge(502, "UPSTREAM_UNAVAILABLE")).toBe(false);
    expect(refusesCharge(201, undefined)).toBe(false);
  });
});

describe("an invoice with nothing to pay", () => {
  it("a free plan's first invoice is paid at once and the subscription is active", async () => {
    const userId = randomUUID();
    const sub = await rig.billing.subscribe(userId, FREE, "pm_card_visa");
    expect(sub.status).toBe("active");
    const [inv] = await invoicesOf(rig.client, userId);
    expect(inv).toMatchObject({ status: "paid", amountDue: 0 });
    expect(rig.charges.filter((c) => c.userId === userId)).toEqual([]);
    const events = (await rig.client.pool.query("SELECT payload->>'type' AS type, payload->>'status' AS status FROM bil_outbox WHERE payload->>'subscriptionId' = $1 ORDER BY id", [sub.subscription_id])).rows;
    expect(events.map((e) => `${e.type}:${e.status}`)).toEqual(["subscription.created:incomplete", "invoice.created:incomplete", "invoice.paid:active", "subscription.updated:active"]);
  });

  it("a renewal paid from credit leaves a past_due subscription past_due while an older invoice is open", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_chargeDeclined");
    await rig.client.pool.query("UPDATE bil_subscriptions SET credit_balance = 5000, period_start = now() - interval '1 month', period_end = now() - interval '1 second' WHERE subscription_id = $1", [id]);
    await rig.billing.runCycle();
    const [first, renewal] = await invoicesOf(rig.client, userId);
    expect([first.status, renewal.status, renewal.creditApplied]).toEqual(["open", "paid", 1000]);
    expect((await subscriptionOf(rig.client, userId)).status).toBe("past_due");
    rig.answer.set(userId, "pay");
    await retryDue(first.invoice_id);
    expect((await invoicesOf(rig.client, userId))[0].status).toBe("paid");
    expect((await subscriptionOf(rig.client, userId)).status).toBe("active");
  });
});

describe("the payment method a charge goes to", () => {
  it("resubscribing from unpaid with a new card: the old subscription's final invoice and its retries go to the new card", async () => {
    const userId = randomUUID();
    rig.answer.set(userId, "decline");
    await rig.billing.subscribe(userId, METERED, "pm_card_old");
    rig.use(userId, 60, new Date());
    const [first] = await invoicesOf(rig.client, userId);
    for (let attempt = 2; attempt <= 4; attempt++) await retryDue(first.invoice_id);
    expect((await subscriptionOf(rig.client, userId)).status).toBe("unpaid");
    const charged = rig.charges.length;
    await new Promise((r) => setTimeout(r, 20)); // the usage comes before the end ([start, end) windows)

    await rig.billing.subscribe(userId, BASIC, "pm_card_new");
    // Both created in one transaction (the same created_at): told apart by their lines.
    const [, ...created] = await invoicesOf(rig.client, userId);
    const final = created.find((i) => i.lines[0][0] === "usage")!;
    expect(created.map((i) => i.lines).sort()).toEqual([[["subscription", 1000]], [["usage", 1100]]]);
    const methods = () => rig.charges.slice(charged).map((c) => [c.amount, c.paymentMethod]);
    expect(methods()).toEqual([[1100n, "pm_card_new"], [1000n, "pm_card_new"]]);
    // Declined on the new card too: dunning retries the final invoice on it, not on the old one.
    await retryDue(final.invoice_id);
    expect(methods()[2]).toEqual([1100n, "pm_card_new"]);
  });
});
