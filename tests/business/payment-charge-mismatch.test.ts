/**
 * payment-service's check of a charge's own answer, against real PostgreSQL and Kafka and the local
 * card processor (tests/fakes/card-processor.ts `chargesDiverge`): the processor answers our charge
 * with a PaymentIntent of another amount or currency than asked. Before, its status was booked
 * whatever it carried: a charge of 10.00 answered for our 50.00 was booked succeeded at 50.00 (journal,
 * payment.succeeded, billing's invoice paid). Now nothing is booked, an operator's `charge_mismatch`
 * issue is recorded once, and the caller is answered 502 PROCESSOR_MISMATCH (a retry of its key 409
 * CHARGE_HELD_FOR_REVIEW: payment-charge-held.test.ts), naming nothing internal; the webhook and reconciliation find the same mismatch and book nothing.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FakeCardProcessor } from "../fakes/card-processor";
import { http } from "../trading/e2e-helpers";
import { usePaymentService } from "./payment-rig";

const fake = new FakeCardProcessor();
const rig = usePaymentService(fake, { env: { PAYMENT_RECONCILE_GRACE_MS: "0" }, poolMax: 4 });
const admin = { "x-user-id": randomUUID(), "x-user-role": "admin", "x-auth-method": "jwt" };

const q = async (sql: string, args: unknown[]) => (await rig.pool.query(sql, args)).rows;

/** A charge of 50.00 usd by a new trader while the processor diverges as `diverge`: the answer, the key, the trader. */
async function divergingCharge(diverge: { amountOff?: number; currency?: string }) {
  const trader = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
  const card = await rig.saveCard(trader);
  const key = `k-${randomUUID()}`;
  const send = () => http("POST", `${rig.base}/intents`, { body: { amount: 5_000, currency: "usd", paymentMethod: card }, headers: { ...trader, "idempotency-key": key } });
  fake.chargesDiverge = diverge;
  try {
    return { r: await send(), send, trader };
  } finally {
    fake.chargesDiverge = undefined;
  }
}

/** The intent of the trader's only payment, and what was booked and announced for it. */
async function recorded(userId: string) {
  const [intent] = await q("SELECT intent_id, status, processor_intent_id FROM pay_intents WHERE user_id = $1", [userId]);
  const journals = await q("SELECT journal_id FROM pay_journals WHERE journal_id = $1", [`payment:${intent.intent_id}`]);
  const events = await q("SELECT event_id FROM pay_outbox WHERE payload->>'intentId' = $1", [intent.intent_id]);
  return { intent, journals, events };
}

describe("a charge the processor answers with another amount or currency than asked", () => {
  it("is not booked: 502 PROCESSOR_MISMATCH naming nothing internal, one charge_mismatch issue, a retry of the key 409 CHARGE_HELD_FOR_REVIEW", async () => {
    const { r, send, trader } = await divergingCharge({ amountOff: -4_000 });
    expect([r.status, r.body.error?.code], JSON.stringify(r.body)).toEqual([502, "PROCESSOR_MISMATCH"]);
    expect(r.body.error.message).not.toMatch(/payment-service|PAYMENT_|pay_|postgres|kafka/i);
    const { intent, journals, events } = await recorded(trader["x-user-id"]);
    const pi = [...fake.intents.values()].find((i) => i.metadata.intent_id === intent.intent_id)!;
    expect([pi.status, pi.amount]).toEqual(["succeeded", 1_000]);
    // Left open with the processor's id: nothing booked nor announced.
    expect(intent).toMatchObject({ status: "created", processor_intent_id: pi.id });
    expect([journals, events]).toEqual([[], []]);
    const issues = (await http("GET", `${rig.base}/refund-issues`, { headers: admin })).body.issues as Record<string, unknown>[];
    expect(issues.filter((i) => i.intentId === intent.intent_id)).toEqual([
      expect.objectContaining({ kind: "charge_mismatch", refundId: null, amount: 5_000, processorAmount: 1_000, processorCurrency: "usd", processorIntentId: pi.id, processorStatus: "succeeded", seen: 1 }),
    ]);
    // The retry of its key: 409 naming the hold (since session 54: a 502 before, which billing retried every cycle), nothing sent to the processor again.
    const created = fake.created;
    const again = await send();
    expect([again.status, again.body.error?.code, again.body.error?.field]).toEqual([409, "CHARGE_HELD_FOR_REVIEW", "idempotency-key"]);
    expect(fake.created).toBe(created);
    // Its webhook (payment_intent.succeeded at 10.00) and reconciliation book nothing either.
    const webhook = fake.webhooks.find((w) => (w.event.data.object as { id?: string }).id === pi.id)!;
    expect(await fake.deliver(webhook)).toBe("ignored");
    const pass = await http("POST", `${rig.base}/reconcile`, { headers: admin });
    expect(pass.body.actions.find((a: { intentId: string }) => a.intentId === intent.intent_id)).toMatchObject({ kind: "mismatch" });
    const after = await recorded(trader["x-user-id"]);
    expect([after.intent.status, after.journals, after.events]).toEqual(["created", [], []]);
    await rig.expectLedgerBalanced();
  });

  it("in another currency: the same, the issue naming the processor's currency", async () => {
    const { r, trader } = await divergingCharge({ currency: "eur" });
    expect([r.status, r.body.error?.code]).toEqual([502, "PROCESSOR_MISMATCH"]);
    const { intent, journals, events } = await recorded(trader["x-user-id"]);
    expect([intent.status, journals, events]).toEqual(["created", [], []]);
    const issues = (await http("GET", `${rig.base}/refund-issues`, { headers: admin })).body.issues as Record<string, unknown>[];
    expect(issues.find((i) => i.intentId === intent.intent_id)).toMatchObject({ kind: "charge_mismatch", amount: 5_000, processorAmount: 5_000, processorCurrency: "eur" });
    // An operator closes it with a note; it cannot be settled from the processor's record (no refund of ours).
    const issue = issues.find((i) => i.intentId === intent.intent_id)!;
    const settle = await http("POST", `${rig.base}/refund-issues/${issue.id}/settle`, { body: { note: "charged in eur by the processor" }, headers: admin });
    expect([settle.status, settle.body.error?.code]).toEqual([409, "ISSUE_NOT_SETTLEABLE"]);
    const resolve = await http("POST", `${rig.base}/refund-issues/${issue.id}/resolve`, { body: { note: "charged in eur by the processor; refunded by hand" }, headers: admin });
    expect(resolve.status, JSON.stringify(resolve.body)).toBe(200);
  });

  it("a charge answered as asked is booked as before", async () => {
    const trader = { "x-user-id": randomUUID(), "x-user-role": "trader", "x-auth-method": "jwt" };
    const card = await rig.saveCard(trader);
    const p = await rig.payment(trader, card, 5_000);
    const { journals, events } = await recorded(trader["x-user-id"]);
    expect([journals.length, events]).toEqual([1, [{ event_id: `${p.id}:payment.succeeded` }]]);
    await rig.expectLedgerBalanced();
  });
});
