/**
 * billing-service and payment-service in process, on real PostgreSQL and Kafka (payments.events
 * between them, published by payment-service's outbox and consumed by billing's consumer group), the
 * card processor tests/fakes/card-processor.ts:
 * - a charge of billing's that payment-service's reconciler closed (never_reached_processor:
 *   payment.failed) and then booked succeeded when the processor reported it after all
 *   (payment.succeeded of the same payment): billing counted one failed attempt and then, paying the
 *   invoice, one more (attempts 2 for one charge). It counts as paid only now: attempts 1.
 * - `POST /refund-issues/:id/settle` -> payment.refunded on Kafka -> billing's credit: a give-back
 *   (the payment of a void invoice refunded) the processor made for less than billing asked stays
 *   pending, an amount_mismatch issue; an admin settles it from the processor's record, and what did
 *   not go back is credit on the subscription, once.
 * - a charge the processor cancels (its webhook, or the reconciler when that is lost) is told as
 *   payment.failed (failureCode canceled_at_processor): billing counts the failed attempt, the invoice
 *   stays open with its retry scheduled. Before, nothing was told and the invoice waited for ever.
 * - a give-back's refund booked in full that the processor paid out at less (a re-check's amount_mismatch
 *   issue): the settle books the processor's amount and announces payment.refund_adjusted; billing
 *   records what went back and credits the difference, once per event id (session 54).
 * - a payments.events message whose currency is missing or none the platform books is set aside in
 *   consumer_dead_letters, the reason naming currency, and billing goes on with the next message.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ensureAccount } from "../helpers/accounts";
import { useBillingPaymentRig } from "../helpers/billing-payment-rig";
import { http, waitUntil } from "../trading/e2e-helpers";

const rig = useBillingPaymentRig({ processorMode: "async" });
const { run, group: GROUP, plan: BASIC, fake, admin } = rig;

const q = async (sql: string, args: unknown[]) => (await rig.pool.query(sql, args)).rows;
/** A user with an account and a card saved at payment-service, subscribed to BASIC (its first charge processing at the processor). */
async function subscribed() {
  const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
  await ensureAccount(rig.pool, user["x-user-id"]);
  const card = await http("POST", `${rig.payments}/payment-methods`, { body: { paymentMethod: "pm_card_visa" }, headers: user });
  expect(card.status, JSON.stringify(card.body)).toBe(201);
  const sub = await http("POST", `${rig.billing}/subscriptions`, { body: { planId: BASIC, paymentMethod: card.body.paymentMethod }, headers: user });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  const [inv] = await q("SELECT invoice_id, last_payment_id FROM bil_invoices WHERE user_id = $1", [user["x-user-id"]]);
  const [intent] = await q("SELECT intent_id, processor_intent_id, status FROM pay_intents WHERE intent_id = $1", [inv.last_payment_id]);
  expect(intent.status).toBe("processing");
  return { user, subscriptionId: sub.body.id as string, invoiceId: inv.invoice_id as string, intentId: intent.intent_id as string, pi: intent.processor_intent_id as string };
}
/** The invoice's charge `intentId` counted as its first failed attempt: open, its retry scheduled, the subscription past_due. */
async function expectFailedAttempt(p: { subscriptionId: string; invoiceId: string; intentId: string }) {
  const failed = await waitUntil("billing counted the failed attempt", async () => ((await invoice(p.invoiceId)).attempts === 1 ? invoice(p.invoiceId) : undefined), 60_000);
  expect(failed).toMatchObject({ status: "open", next_attempt_at: expect.any(Date) });
  expect(await q("SELECT intent_id, attempt FROM bil_failed_attempts WHERE invoice_id = $1", [p.invoiceId])).toEqual([{ intent_id: p.intentId, attempt: 1 }]);
  expect((await q("SELECT status FROM bil_subscriptions WHERE subscription_id = $1", [p.subscriptionId]))[0].status).toBe("past_due");
  const events = await q("SELECT payload->>'type' AS type, (payload->>'attempts')::int AS attempts FROM bil_outbox WHERE payload->>'invoiceId' = $1 ORDER BY id", [p.invoiceId]);
  expect(events).toEqual([{ type: "invoice.created", attempts: null }, { type: "invoice.payment_failed", attempts: 1 }]);
}
const invoice = async (invoiceId: string) => (await q("SELECT status, attempts, next_attempt_at FROM bil_invoices WHERE invoice_id = $1", [invoiceId]))[0];
const reconcile = async () => {
  const r = await http("POST", `${rig.payments}/reconcile`, { headers: admin });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { actions: { kind: string; intentId: string; to?: string }[] };
};

describe("payments.events between payment-service and billing-service", () => {
  it("a charge closed by the reconciler and then paid counts as one paid attempt, not a failed one and a paid one", async () => {
    const { subscriptionId, invoiceId, intentId, pi } = await subscribed();
    // The create's answer was lost and the processor has no record of it: our intent `created`, an hour old.
    const charged = fake.intents.get(pi)!;
    fake.intents.delete(pi);
    await q("UPDATE pay_intents SET status = 'created', processor_intent_id = NULL, created_at = now() - interval '1 hour' WHERE intent_id = $1", [intentId]);
    expect((await reconcile()).actions.find((a) => a.intentId === intentId)).toMatchObject({ kind: "never_reached_processor" });
    const failed = await waitUntil("billing counted the failed attempt", async () => ((await invoice(invoiceId)).attempts === 1 ? invoice(invoiceId) : undefined), 60_000);
    expect(failed).toMatchObject({ status: "open", next_attempt_at: expect.any(Date) });
    // The processor charged it all the same; the next pass books it.
    fake.intents.set(pi, { ...charged, status: "succeeded", amount_received: charged.amount });
    expect((await reconcile()).actions.find((a) => a.intentId === intentId)).toMatchObject({ kind: "settle", to: "succeeded" });
    await waitUntil("invoice paid", async () => (await invoice(invoiceId)).status === "paid", 60_000);
    expect(await invoice(invoiceId)).toMatchObject({ status: "paid", attempts: 1, next_attempt_at: null });
    const events = await q("SELECT payload->>'type' AS type, (payload->>'attempts')::int AS attempts FROM bil_outbox WHERE payload->>'invoiceId' = $1 ORDER BY id", [invoiceId]);
    expect(events).toEqual([{ type: "invoice.created", attempts: null }, { type: "invoice.payment_failed", attempts: 1 }, { type: "invoice.paid", attempts: 1 }]);
    expect((await q("SELECT status FROM bil_subscriptions WHERE subscription_id = $1", [subscriptionId]))[0].status).toBe("active");
    expect(await q("SELECT intent_id, attempt FROM bil_failed_attempts WHERE invoice_id = $1", [invoiceId])).toEqual([{ intent_id: intentId, attempt: 1 }]);
    // One charge at the processor for the invoice: nothing given back.
    expect(await q("SELECT 1 FROM bil_give_backs WHERE invoice_id = $1", [invoiceId])).toEqual([]);
  }, 180_000);

  it("a charge the processor cancels (its webhook) is told as payment.failed: billing counts a failed attempt and schedules the next", async () => {
    const { subscriptionId, invoiceId, intentId } = await subscribed();
    const [delivery] = await fake.cancel((i) => i.metadata.intent_id === intentId);
    expect(delivery.lastStatus).toBe(200);
    expect((await q("SELECT status, failure_code FROM pay_intents WHERE intent_id = $1", [intentId]))[0]).toEqual({ status: "canceled", failure_code: "canceled_at_processor" });
    const [sent] = await q("SELECT event_id, payload FROM pay_outbox WHERE payload->>'intentId' = $1", [intentId]);
    expect(sent).toMatchObject({ event_id: `${intentId}:payment.failed`, payload: { type: "payment.failed", failureCode: "canceled_at_processor", reference: `invoice:${invoiceId}` } });
    await expectFailedAttempt({ subscriptionId, invoiceId, intentId });
    // Its webhook once more: a duplicate, counted once.
    expect(await fake.deliver(delivery)).toBe("duplicate");
    expect(await q("SELECT count(*)::int AS n FROM pay_outbox WHERE payload->>'intentId' = $1", [intentId])).toEqual([{ n: 1 }]);
  }, 180_000);

  it("a charge the processor cancelled, its webhook lost, is told by the reconciler: billing counts a failed attempt", async () => {
    const { subscriptionId, invoiceId, intentId } = await subscribed();
    await fake.cancel((i) => i.metadata.intent_id === intentId, false);
    expect((await reconcile()).actions.find((a) => a.intentId === intentId)).toMatchObject({ kind: "settle", to: "canceled" });
    await expectFailedAttempt({ subscriptionId, invoiceId, intentId });
  }, 180_000);

  it("settling a give-back's amount_mismatch issue credits on the subscription what did not go back, once", async () => {
    const { user, subscriptionId, invoiceId, intentId } = await subscribed();
    // Cancelled while the charge is processing: the invoice is void, nothing is owed for it.
    const cancel = await http("POST", `${rig.billing}/subscriptions/${subscriptionId}/cancel`, { body: { atPeriodEnd: false }, headers: user });
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(200);
    expect((await invoice(invoiceId)).status).toBe("void");
    // The charge succeeds; billing gives it back, and the processor refunds 700 of the 1,000 asked.
    fake.refundsDiverge = { amountOff: -300 };
    try {
      await fake.settle((i) => i.metadata.intent_id === intentId);
      await waitUntil("billing asked for the give-back", async () => (await q("SELECT status FROM bil_give_backs WHERE intent_id = $1", [intentId]))[0]?.status === "pending", 60_000);
    } finally {
      fake.refundsDiverge = undefined;
    }
    const issues = (await http("GET", `${rig.payments}/refund-issues`, { headers: admin })).body.issues as { id: string; kind: string; intentId: string; processorAmount: number }[];
    const issue = issues.find((i) => i.intentId === intentId)!;
    expect(issue).toMatchObject({ kind: "amount_mismatch", processorAmount: 700 });
    const settled = await http("POST", `${rig.payments}/refund-issues/${issue.id}/settle`, { body: { note: "the processor refunded 7.00 of the 10.00 asked" }, headers: admin });
    expect([settled.status, settled.body.settledStatus, settled.body.refund?.amount], JSON.stringify(settled.body)).toEqual([200, "succeeded", 700]);
    const credit = async () => (await q("SELECT credit_balance::int AS c FROM bil_subscriptions WHERE subscription_id = $1", [subscriptionId]))[0].c as number;
    await waitUntil("billing credited the shortfall", async () => (await credit()) === 300, 60_000);
    expect(await q("SELECT status, amount::int, returned_amount::int FROM bil_give_backs WHERE intent_id = $1", [intentId])).toEqual([{ status: "succeeded", amount: 1_000, returned_amount: 700 }]);
    // The event once more (a redelivery under its id): nothing more.
    const [sent] = await q("SELECT payload FROM pay_outbox WHERE event_id LIKE 'refund:%' AND payload->>'intentId' = $1", [intentId]);
    expect(sent.payload).toMatchObject({ type: "payment.refunded", currency: "usd", paymentCurrency: "usd", refundedAmount: 700 });
    // (a marker after it, same key and so same partition, naming an invoice billing does not have: once
    // billing set the marker aside, it has read the redelivery)
    const marker = { ...sent.payload, eventId: `marker-${intentId}`, reference: `invoice:${randomUUID()}` };
    await publish([sent.payload, marker].map((m) => ({ key: user["x-user-id"], value: JSON.stringify(m) })));
    await waitUntil("billing read the redelivery", async () => setAside(marker.eventId), 60_000);
    expect(await credit()).toBe(300);
    // Its reversal told of a payment in another currency than the invoice's is not this invoice's charge: ignored.
    const foreign = { ...sent.payload, type: "payment.refund_reversed", eventId: `reversed-eur-${intentId}`, paymentCurrency: "eur" };
    const marker2 = { ...marker, eventId: `marker2-${intentId}` };
    await publish([foreign, marker2].map((m) => ({ key: user["x-user-id"], value: JSON.stringify(m) })));
    await waitUntil("billing read the foreign reversal", async () => setAside(marker2.eventId), 60_000);
    expect(await credit()).toBe(300);
    expect(await q("SELECT status FROM bil_give_backs WHERE intent_id = $1", [intentId])).toEqual([{ status: "succeeded" }]);
  }, 180_000);

  it("a give-back's refund the processor paid out at less than booked: the settle books its amount (payment.refund_adjusted), billing credits the difference, once", async () => {
    const { user, subscriptionId, invoiceId, intentId } = await subscribed();
    const cancel = await http("POST", `${rig.billing}/subscriptions/${subscriptionId}/cancel`, { body: { atPeriodEnd: false }, headers: user });
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(200);
    // The charge succeeds for the void invoice; billing gives it back, refunded and booked in full.
    await fake.settle((i) => i.metadata.intent_id === intentId);
    await waitUntil("the give-back went out", async () => (await q("SELECT status FROM bil_give_backs WHERE intent_id = $1", [intentId]))[0]?.status === "succeeded", 60_000);
    const [{ refund_id: refundId }] = await q("SELECT refund_id FROM bil_give_backs WHERE intent_id = $1", [intentId]);
    // The processor's record of it says 6.00 (it paid out less): the re-check finds it, an amount_mismatch issue.
    fake.refundOf(refundId).amount = 600;
    await q("UPDATE pay_refunds SET succeeded_at = now() - interval '7 hours', rechecked_at = NULL WHERE refund_id = $1", [refundId]);
    expect((await http("POST", `${rig.payments}/reconcile`, { headers: admin })).body.rechecked.filter((x: { refundId: string }) => x.refundId === refundId)).toEqual([expect.objectContaining({ outcome: "mismatch" })]);
    const issues = (await http("GET", `${rig.payments}/refund-issues`, { headers: admin })).body.issues as { id: string; kind: string; refundId: string }[];
    const issue = issues.find((i) => i.refundId === refundId)!;
    expect(issue).toMatchObject({ kind: "amount_mismatch" });
    const settled = await http("POST", `${rig.payments}/refund-issues/${issue.id}/settle`, { body: { note: "the processor paid out 6.00 of the 10.00" }, headers: admin });
    expect([settled.status, settled.body.settledStatus, settled.body.refund?.amount, settled.body.refund?.requestedAmount], JSON.stringify(settled.body)).toEqual([200, "succeeded", 600, 1_000]);
    const [sent] = await q("SELECT payload FROM pay_outbox WHERE event_id = $1", [`refund:${refundId}:adjusted`]);
    expect(sent.payload).toMatchObject({ type: "payment.refund_adjusted", refundId, refundedAmount: 600, previousRefundedAmount: 1_000, currency: "usd", paymentCurrency: "usd" });
    expect((await q("SELECT refunded::int FROM pay_intents WHERE intent_id = $1", [intentId]))[0].refunded).toBe(600);
    const credit = async () => (await q("SELECT credit_balance::int AS c FROM bil_subscriptions WHERE subscription_id = $1", [subscriptionId]))[0].c as number;
    await waitUntil("billing credited what did not go back", async () => (await credit()) === 400, 60_000);
    expect(await q("SELECT status, amount::int, returned_amount::int FROM bil_give_backs WHERE intent_id = $1", [intentId])).toEqual([{ status: "succeeded", amount: 1_000, returned_amount: 600 }]);
    // Told again under its id: nothing more; an adjustment back up to 10.00 under another id takes the credit back.
    const marker = { ...sent.payload, type: "payment.refunded", eventId: `marker-adj-${intentId}`, reference: `invoice:${randomUUID()}` };
    const up = { ...sent.payload, eventId: `up-${intentId}`, refundedAmount: 1_000, previousRefundedAmount: 600 };
    await publish([sent.payload, marker].map((m) => ({ key: user["x-user-id"], value: JSON.stringify(m) })));
    await waitUntil("billing read the redelivery", async () => setAside(marker.eventId), 60_000);
    expect(await credit()).toBe(400);
    await publish([{ key: user["x-user-id"], value: JSON.stringify(up) }]);
    await waitUntil("billing took the credit back", async () => (await credit()) === 0, 60_000);
    expect((await q("SELECT returned_amount::int FROM bil_give_backs WHERE intent_id = $1", [intentId]))[0].returned_amount).toBe(1_000);
  }, 180_000);

  it("a message with no currency, or one the platform does not book, is set aside naming currency; the next one reaches billing", async () => {
    const userId = randomUUID();
    const base = { type: "payment.refunded", intentId: randomUUID(), userId, amount: 1_000, reference: `invoice:${randomUUID()}`, refundedAmount: 1_000, refundId: randomUUID(), ts: Date.now() };
    const bad = [{ ...base, eventId: `nocur-${run}` }, { ...base, eventId: `xyz-${run}`, currency: "xyz" }, { ...base, eventId: `upper-${run}`, currency: "USD" }];
    await publish(bad.map((m) => ({ key: userId, value: JSON.stringify(m) })));
    const good = `good-${run}`;
    await publish([{ key: userId, value: JSON.stringify({ ...base, eventId: good, currency: "usd" }) }]);
    // (it names an invoice this billing does not have: billing sets it aside in turn, naming reference, since session 57)
    await waitUntil("the good one reached billing", async () => setAside(good), 60_000);
    // (the group reads the shared broker's payments.events from the beginning: other files' poison too)
    const mine = (v: Buffer) => bad.find((m) => v?.toString("utf8").includes(`"eventId":"${m.eventId}"`))?.eventId;
    const aside = (await q("SELECT msg_value, reason FROM consumer_dead_letters WHERE consumer_group = $1 ORDER BY msg_partition, msg_offset", [GROUP])).filter((a) => mine(a.msg_value));
    expect(aside.map((a) => mine(a.msg_value))).toEqual(bad.map((m) => m.eventId));
    for (const a of aside) expect(a.reason).toMatch(/^payments\.events message: currency: /);
    expect(await q("SELECT event_id FROM bil_processed_events WHERE event_id = ANY($1)", [bad.map((m) => m.eventId)])).toEqual([]);
    const [reached] = await q("SELECT reason FROM consumer_dead_letters WHERE consumer_group = $1 AND convert_from(msg_value, 'UTF8') LIKE $2", [GROUP, `%"eventId":"${good}"%`]);
    expect(reached.reason).toMatch(/reference: names invoice .*, which billing does not have/);
  }, 120_000);
});

/** Whether billing's group set the event `eventId` aside (a marker naming an invoice billing does not have: billing-unknown-invoice.test.ts). */
async function setAside(eventId: string): Promise<boolean> {
  return (await q("SELECT 1 FROM consumer_dead_letters WHERE consumer_group = $1 AND convert_from(msg_value, 'UTF8') LIKE $2", [GROUP, `%"eventId":"${eventId}"%`])).length > 0;
}

async function publish(messages: { key: string; value: string }[]): Promise<void> {
  const producer = rig.kafka.producer();
  await producer.connect();
  await producer.send({ topic: "payments.events", messages });
  await producer.disconnect();
}

