/**
 * A charge payment-service holds for an operator (the card processor answered it with another amount
 * or currency: a `charge_mismatch` issue, migration 0500), billing-service and payment-service in
 * process on real PostgreSQL and Kafka, the card processor tests/fakes/card-processor.ts (session 54):
 * - before, every reconciliation pass looked the held charge up at the processor and logged its
 *   mismatch, until an operator resolved it; now it is looked up once, then again only once its issue
 *   was resolved since, or once an hour (staleOpen);
 * - a retry of its key was answered 502, which billing's cycle retried on every pass; it is 409
 *   CHARGE_HELD_FOR_REVIEW naming the Idempotency-Key, and billing records the hold (charge_held_at,
 *   migration 0508) and charges the invoice no more, with this key or another;
 * - the processor's PaymentIntent canceled there (an operator's cancel of the wrong charge) moved no
 *   money whatever its amount: reconciliation or its webhook closes it canceled (payment.failed), the issue is
 *   resolved, and billing counts the failed attempt and clears the hold, so dunning goes on.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ensureAccount } from "../helpers/accounts";
import { useBillingPaymentRig } from "../helpers/billing-payment-rig";
import { http, waitUntil } from "../trading/e2e-helpers";

const rig = useBillingPaymentRig();
const { plan: BASIC, fake, admin } = rig;

const q = async (sql: string, args: unknown[]) => (await rig.pool.query(sql, args)).rows;
const invoice = async (invoiceId: string) => (await q("SELECT status, attempts, next_attempt_at, charge_held_at, last_payment_id FROM bil_invoices WHERE invoice_id = $1", [invoiceId]))[0];
const reconcile = async () => {
  const r = await http("POST", `${rig.payments}/reconcile`, { headers: admin });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (r.body.actions as { kind: string; intentId: string; to?: string }[]);
};
const cycle = async () => {
  const r = await http("POST", `${rig.billing}/cycle`, { headers: admin });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
};
/** billing-service's gauges of held charges, as Prometheus scrapes them. */
const gauges = async () => {
  const text = (await rig.billingService.app.inject({ method: "GET", url: "/metrics" })).body;
  return Object.fromEntries([...text.matchAll(/^(billing_invoices?_charge_held\w*)(?:\{[^}]*\})? (\S+)$/gm)].map((m) => [m[1], Number(m[2])]));
};
const issueOf = async (intentId: string) => (await q("SELECT issue_id, seen, resolved_at FROM pay_refund_issues WHERE issue_key = $1", [`charge_mismatch:${intentId}`]))[0];

describe("a charge held for an operator (charge_mismatch)", () => {
  it("is looked up once (then on resolution or hourly), billing's retry gets 409 CHARGE_HELD_FOR_REVIEW and stops, a cancel at the processor ends it", async () => {
    const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    await ensureAccount(rig.pool, user["x-user-id"]);
    const card = await http("POST", `${rig.payments}/payment-methods`, { body: { paymentMethod: "pm_card_visa" }, headers: user });
    expect(card.status, JSON.stringify(card.body)).toBe(201);
    // The processor answers the subscription's first charge (10.00) with a PaymentIntent of 5.00.
    fake.chargesDiverge = { amountOff: -500 };
    let sub;
    try {
      sub = await http("POST", `${rig.billing}/subscriptions`, { body: { planId: BASIC, paymentMethod: card.body.paymentMethod }, headers: user });
    } finally {
      fake.chargesDiverge = undefined;
    }
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
    const [{ invoice_id: invoiceId }] = await q("SELECT invoice_id FROM bil_invoices WHERE user_id = $1", [user["x-user-id"]]);
    const [intent] = await q("SELECT intent_id, status, processor_intent_id FROM pay_intents WHERE user_id = $1", [user["x-user-id"]]);
    expect(intent.status).toBe("created");
    // Billing holds the invoice: not failed, not to be charged again.
    expect(await invoice(invoiceId)).toMatchObject({ status: "open", attempts: 0, next_attempt_at: null, charge_held_at: expect.any(Date) });
    // The hold shows in the invoice's answer, and in billing's gauges for operators: held, and once
    // older than BILLING_CHARGE_HOLD_OVERDUE_DAYS (7 by default; other files' holds may be counted too),
    // overdue with the oldest hold's age (before session 54: in neither).
    const shown = await http("GET", `${rig.billing}/invoices`, { headers: user });
    expect(shown.status, JSON.stringify(shown.body)).toBe(200);
    expect(shown.body.invoices).toEqual([expect.objectContaining({ id: invoiceId, status: "open", chargeHeldAt: (await invoice(invoiceId)).charge_held_at.toISOString() })]);
    expect(await gauges()).toMatchObject({ billing_invoices_charge_held: expect.any(Number), billing_invoices_charge_held_overdue: expect.any(Number) });
    const before = await gauges();
    expect(before.billing_invoices_charge_held).toBeGreaterThanOrEqual(1);
    await q("UPDATE bil_invoices SET charge_held_at = now() - interval '8 days' WHERE invoice_id = $1", [invoiceId]);
    const overdue = await gauges();
    expect(overdue.billing_invoices_charge_held_overdue).toBeGreaterThanOrEqual(1);
    expect(overdue.billing_invoice_charge_held_oldest_seconds).toBeGreaterThanOrEqual(8 * 86_400);

    // A retry of the charge's key: 409 naming the hold and the key, nothing sent to the processor.
    const created = fake.created;
    const key = (await q("SELECT idempotency_key FROM pay_intents WHERE intent_id = $1", [intent.intent_id]))[0].idempotency_key as string;
    const held = await http("POST", `${rig.payments}/internal/intents`, { body: { userId: user["x-user-id"], amount: 1_000, currency: "usd", paymentMethod: card.body.paymentMethod, reference: `invoice:${invoiceId}`, description: `Invoice ${invoiceId}` }, headers: { "idempotency-key": key } });
    expect([held.status, held.body.error?.code, held.body.error?.field], JSON.stringify(held.body)).toEqual([409, "CHARGE_HELD_FOR_REVIEW", "idempotency-key"]);
    expect(held.body.error.message).not.toMatch(/payment-service|PAYMENT_|pay_|postgres|kafka/i);
    // Billing's cycles charge it no more (no request of its, so no new PaymentIntent and no new intent row).
    await cycle();
    await cycle();
    expect(fake.created).toBe(created);
    expect((await q("SELECT count(*)::int AS n FROM pay_intents WHERE user_id = $1", [user["x-user-id"]]))[0].n).toBe(1);
    expect(await invoice(invoiceId)).toMatchObject({ status: "open", attempts: 0, charge_held_at: expect.any(Date) });

    // Reconciliation: looked up once (the mismatch, its issue seen once more), then not on the next passes.
    expect((await reconcile()).find((a) => a.intentId === intent.intent_id)).toMatchObject({ kind: "mismatch" });
    const seen = (await issueOf(intent.intent_id)).seen as number;
    expect((await reconcile()).find((a) => a.intentId === intent.intent_id)).toBeUndefined();
    expect((await reconcile()).find((a) => a.intentId === intent.intent_id)).toBeUndefined();
    expect((await issueOf(intent.intent_id)).seen).toBe(seen);
    // An operator resolves it: looked up once more, then held again (the operator's close stands).
    const issue = await issueOf(intent.intent_id);
    const resolve = await http("POST", `${rig.payments}/refund-issues/${issue.issue_id}/resolve`, { body: { note: "asked the processor about the 5.00 charge" }, headers: admin });
    expect(resolve.status, JSON.stringify(resolve.body)).toBe(200);
    expect((await reconcile()).find((a) => a.intentId === intent.intent_id)).toMatchObject({ kind: "mismatch" });
    expect((await reconcile()).find((a) => a.intentId === intent.intent_id)).toBeUndefined();
    // An hour after its last lookup: looked up again.
    await q("UPDATE pay_intents SET reconciled_at = now() - interval '61 minutes' WHERE intent_id = $1", [intent.intent_id]);
    expect((await reconcile()).find((a) => a.intentId === intent.intent_id)).toMatchObject({ kind: "mismatch" });

    // The operator cancels the wrong PaymentIntent at the processor: no money moved, so the next lookup
    // closes the payment canceled (payment.failed) and billing counts the attempt, its hold cleared.
    const pi = fake.intents.get(intent.processor_intent_id)!;
    fake.intents.set(pi.id, { ...pi, status: "canceled" });
    await q("UPDATE pay_intents SET reconciled_at = now() - interval '61 minutes' WHERE intent_id = $1", [intent.intent_id]);
    expect((await reconcile()).find((a) => a.intentId === intent.intent_id)).toMatchObject({ kind: "settle", to: "canceled" });
    const failed = await waitUntil("billing counted the failed attempt", async () => ((await invoice(invoiceId)).attempts === 1 ? invoice(invoiceId) : undefined), 60_000);
    expect(failed).toMatchObject({ status: "open", next_attempt_at: expect.any(Date), charge_held_at: null });
    expect((await http("GET", `${rig.billing}/invoices`, { headers: user })).body.invoices[0]).toMatchObject({ id: invoiceId, attempts: 1, chargeHeldAt: null });
    expect((await q("SELECT status FROM pay_intents WHERE intent_id = $1", [intent.intent_id]))[0].status).toBe("canceled");
    expect((await issueOf(intent.intent_id)).resolved_at).toEqual(expect.any(Date));
  });

  it("canceled at the processor, its webhook closes it canceled whatever its amount: payment.failed, the issue resolved", async () => {
    const user = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    await ensureAccount(rig.pool, user["x-user-id"]);
    const card = await http("POST", `${rig.payments}/payment-methods`, { body: { paymentMethod: "pm_card_visa" }, headers: user });
    expect(card.status, JSON.stringify(card.body)).toBe(201);
    fake.mode = "async";
    fake.chargesDiverge = { amountOff: -300 };
    let r;
    try {
      r = await http("POST", `${rig.payments}/intents`, { body: { amount: 2_000, currency: "usd", paymentMethod: card.body.paymentMethod }, headers: { ...user, "idempotency-key": `k-${randomUUID()}` } });
    } finally {
      fake.mode = "sync";
      fake.chargesDiverge = undefined;
    }
    expect([r.status, r.body.error?.code]).toEqual([502, "PROCESSOR_MISMATCH"]);
    const [intent] = await q("SELECT intent_id FROM pay_intents WHERE user_id = $1", [user["x-user-id"]]);
    expect((await issueOf(intent.intent_id)).resolved_at).toBeNull();
    // (before session 54: "ignored", its amount differing, and the payment open for ever)
    const [delivery] = await fake.cancel((i) => i.metadata.intent_id === intent.intent_id);
    expect(delivery.lastStatus).toBe(200);
    expect((await q("SELECT status FROM pay_intents WHERE intent_id = $1", [intent.intent_id]))[0].status).toBe("canceled");
    expect((await q("SELECT payload->>'type' AS type FROM pay_outbox WHERE payload->>'intentId' = $1", [intent.intent_id])).map((e) => e.type)).toEqual(["payment.failed"]);
    expect((await issueOf(intent.intent_id)).resolved_at).toEqual(expect.any(Date));
    expect(await fake.deliver(delivery)).toBe("duplicate");
  });
});
