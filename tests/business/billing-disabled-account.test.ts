/**
 * A disabled account's billing pauses. Before, the cycle skipped charging a disabled account but
 * still renewed its subscription at every period's end: an account disabled for three months came
 * back owing three renewals for a service it could not use, all charged when an admin enabled it
 * again. Now the subscription is paused at its period's end (no invoice while the account is
 * disabled, its MRR 0), the invoices open before the disable wait and are charged after the enable
 * (the debt was real), and the first cycle after the enable renews it from then: a new period and
 * anchor, not back-dated. Real PostgreSQL (user-management's `users` rows), payment-service a
 * stand-in (tests/helpers/billing-rig.ts).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { invoicesOf, plan, useBillingRig } from "../helpers/billing-rig";
import { subscriptionView } from "../../services/src/services/billing-service/views";

const run = randomBytes(3).toString("hex");
const BASIC = `basic-${run}`;
const rig = useBillingRig([plan(BASIC, 1000)]);
const DAY_MS = 86_400_000;

const chargesOf = (userId: string) => rig.charges.filter((c) => c.userId === userId).length;
const setDisabled = (userId: string, disabled: boolean) => rig.client.pool.query(`UPDATE users SET disabled_at = ${disabled ? "now()" : "NULL"} WHERE id = $1`, [userId]);
/** Puts the subscription `months` periods back: anchored months + 1 ago, its current period ended `months` ago. */
const monthsBack = (subscriptionId: string, months: number) =>
  rig.client.pool.query("UPDATE bil_subscriptions SET anchor = now() - make_interval(months => $2 + 1), period_start = now() - make_interval(months => $2 + 1), period_end = now() - make_interval(months => $2) WHERE subscription_id = $1", [subscriptionId, months]);
const eventsOf = async (subscriptionId: string) =>
  (await rig.client.pool.query<{ type: string; mrr: string }>("SELECT payload->>'type' AS type, payload->>'mrr' AS mrr FROM bil_outbox WHERE payload->>'subscriptionId' = $1 ORDER BY id", [subscriptionId])).rows;

const allEventsOf = async (subscriptionId: string) =>
  (await rig.client.pool.query<{ type: string; status: string; mrr: string }>("SELECT payload->>'type' AS type, payload->>'status' AS status, payload->>'mrr' AS mrr FROM bil_outbox WHERE payload->>'subscriptionId' = $1 ORDER BY id", [subscriptionId])).rows;

describe("a disabled account's subscription is paused, not renewed", () => {
  it("a disable lasting three periods invoices nothing for them; after the enable, one renewal from then, charged once", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
    expect(chargesOf(userId)).toBe(1);
    // Another, set to cancel at its period's end: it ends at it, disabled or not, and is not paused.
    const leaving = randomUUID();
    const { subscription_id: leavingId } = await rig.billing.subscribe(leaving, BASIC, "pm_card_visa");
    await rig.billing.cancel(leaving, leavingId, true);
    await setDisabled(userId, true);
    await setDisabled(leaving, true);
    // Three periods ended while disabled; the cycle runs many times over them.
    await monthsBack(id, 3);
    await monthsBack(leavingId, 3);
    for (let i = 0; i < 4; i++) await rig.billing.runCycle();
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid"]);
    expect(chargesOf(userId)).toBe(1);
    expect((await rig.repo.subscription(leavingId))!.status).toBe("canceled");
    expect((await invoicesOf(rig.client, leaving)).map((i) => i.status)).toEqual(["paid"]);
    const paused = (await rig.repo.subscription(id))!;
    expect(paused.paused_at).not.toBeNull();
    expect(paused.status).toBe("active");
    // Paused: its MRR is 0 for revenue-analytics.
    expect((await eventsOf(id)).at(-1)).toEqual({ type: "subscription.updated", mrr: "0" });

    await setDisabled(userId, false);
    const enabledAt = Date.now();
    for (let i = 0; i < 3; i++) await rig.billing.runCycle();
    const invoices = await invoicesOf(rig.client, userId);
    expect(invoices.map((i) => i.status)).toEqual(["paid", "paid"]);
    expect(chargesOf(userId)).toBe(2);
    const resumed = (await rig.repo.subscription(id))!;
    expect(resumed).toMatchObject({ status: "active", paused_at: null });
    // Not back-dated: the new period (and the anchor) start at the renewal after the enable.
    expect(Math.abs(resumed.period_start.getTime() - enabledAt)).toBeLessThan(60_000);
    expect(resumed.anchor.getTime()).toBe(resumed.period_start.getTime());
    expect(resumed.period_end.getTime() - resumed.period_start.getTime()).toBeGreaterThanOrEqual(28 * DAY_MS);
    const [, renewal] = (await rig.client.pool.query<{ period_start: Date }>("SELECT l.period_start FROM bil_invoice_lines l JOIN bil_invoices i USING (invoice_id) WHERE i.user_id = $1 AND l.kind = 'subscription' ORDER BY i.created_at", [userId])).rows;
    expect(renewal.period_start.getTime()).toBe(resumed.period_start.getTime());
    expect((await eventsOf(id)).filter((e) => e.type === "subscription.updated").at(-1)).toEqual({ type: "subscription.updated", mrr: "1000" });
  });

  it("an invoice open before the disable is charged after the enable, with the resumed period's; none for the time disabled", async () => {
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
    // The renewal is declined: open, in dunning, the subscription past_due.
    rig.answer.set(userId, "decline");
    await monthsBack(id, 0);
    await rig.billing.runCycle();
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid", "open"]);
    await setDisabled(userId, true);
    await monthsBack(id, 2);
    await rig.client.pool.query("UPDATE bil_invoices SET next_attempt_at = now() - interval '1 second' WHERE user_id = $1 AND status = 'open'", [userId]);
    for (let i = 0; i < 3; i++) await rig.billing.runCycle();
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid", "open"]);
    expect(chargesOf(userId)).toBe(2);
    expect((await rig.repo.subscription(id))!).toMatchObject({ status: "past_due" });

    rig.answer.set(userId, "pay");
    await setDisabled(userId, false);
    for (let i = 0; i < 3; i++) await rig.billing.runCycle();
    expect((await invoicesOf(rig.client, userId)).map((i) => i.status)).toEqual(["paid", "paid", "paid"]);
    expect(chargesOf(userId)).toBe(4);
    expect((await rig.repo.subscription(id))!).toMatchObject({ status: "active", paused_at: null });
  });

  it("while paused, the client and every event see the status paused, with MRR 0; the renewal after the enable says active again", async () => {
    // Found by session 38's hunt: a paused subscription read `active` (with `pausedAt`), and an event
    // of it while paused (an invoice of before the disable paid meanwhile) said `active` with the
    // plan's MRR, which revenue-analytics took as the subscription paying again.
    const userId = randomUUID();
    const { subscription_id: id } = await rig.billing.subscribe(userId, BASIC, "pm_card_visa");
    rig.answer.set(userId, "decline");
    await monthsBack(id, 0);
    await rig.billing.runCycle();
    const open = (await invoicesOf(rig.client, userId)).find((i) => i.status === "open")!;
    await setDisabled(userId, true);
    await monthsBack(id, 1);
    await rig.billing.runCycle();
    const paused = (await rig.repo.subscription(id))!;
    expect(paused.paused_at).not.toBeNull();
    expect(subscriptionView(paused)).toMatchObject({ status: "paused", pausedAt: paused.paused_at!.toISOString() });
    const before = (await allEventsOf(id)).length;

    // The invoice open before the disable is paid meanwhile (a payment that completed late).
    const intentId = randomUUID();
    const paid = { eventId: `${intentId}:payment.succeeded`, type: "payment.succeeded" as const, intentId, userId, amount: Number(open.amount_due), currency: "usd", reference: `invoice:${open.invoice_id}`, failureCode: null, ts: Date.now() };
    expect(await rig.client.transaction((c) => rig.billing.onPaymentEvent(c, paid))).toBe(true);
    const afterPayment = (await rig.repo.subscription(id))!;
    expect(subscriptionView(afterPayment).status).toBe("paused");
    const during = (await allEventsOf(id)).slice(before);
    expect(during.map((e) => e.type)).toEqual(["invoice.paid", "subscription.updated"]);
    for (const e of during) expect({ status: e.status, mrr: e.mrr }).toEqual({ status: "paused", mrr: "0" });

    rig.answer.set(userId, "pay");
    await setDisabled(userId, false);
    for (let i = 0; i < 3; i++) await rig.billing.runCycle();
    const resumed = (await rig.repo.subscription(id))!;
    expect(subscriptionView(resumed)).toMatchObject({ status: "active", pausedAt: null });
    expect((await allEventsOf(id)).filter((e) => e.type === "subscription.updated").at(-1)).toMatchObject({ status: "active", mrr: "1000" });
  });
});
