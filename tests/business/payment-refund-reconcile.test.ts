/**
 * Refunds left `pending` (found by session 38's hunt): refund() commits a pending refund, then calls
 * the processor; when the answer never came (a timeout, a dropped connection, a crash) nothing
 * settled the row, and its amount stayed held against the payment for ever. The refund reconciler
 * (POST /reconcile, or the periodic pass) now asks the processor for each refund pending longer
 * than PAYMENT_REFUND_RECONCILE_AGE_MS by the refund id we sent, Stripe's "List all refunds" of the
 * payment: one the processor made ends succeeded (journal, event), one it never saw ends failed,
 * its amount released. Two services sweeping at once settle each refund once.
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts through the `stripe` SDK.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FakeCardProcessor } from "../fakes/card-processor";
import { usePaymentReplicas } from "./payment-replicas";

const fake = new FakeCardProcessor();
// A short processor timeout keeps the SDK's three attempts at a lost answer quick; the age is the
// default's (15 min): the test moves the refunds' last send back instead of shortening the rule.
// Two replicas of payment-service on one database.
const replicas = usePaymentReplicas(fake, {
  env: { PAYMENT_PROCESSOR_TIMEOUT_MS: "2000" },
  resetFake: () => {
    fake.refundRequests = "ok";
    fake.refundListDelayMs = 0;
  },
});
const { bases, payment, refund } = replicas;

/** A refund whose processor call went as `fake.refundRequests` says: the caller hears no outcome, the row stays pending. */
async function pendingRefund(p: { id: string }, how: "answer-lost" | "unreachable", amount: number): Promise<{ key: string; refundId: string }> {
  fake.refundRequests = how;
  const key = `r-${randomUUID()}`;
  try {
    const r = await refund(p.id, key, amount);
    // No answer from the processor: not a refusal (4xx); the old code answered 500, the new one 502.
    expect(r.status, JSON.stringify(r.body)).toBeGreaterThanOrEqual(500);
  } finally {
    fake.refundRequests = "ok";
  }
  const { rows } = await replicas.pool.query<{ refund_id: string; status: string }>("SELECT refund_id, status FROM pay_refunds WHERE intent_id = $1 AND idempotency_key = $2", [p.id, key]);
  expect(rows[0].status).toBe("pending");
  return { key, refundId: rows[0].refund_id };
}

/** As if the refunds' last send was an hour ago (past the age and the in-flight bound). */
const age = (refundIds: string[]) => replicas.pool.query("UPDATE pay_refunds SET sent_at = now() - interval '1 hour', created_at = now() - interval '1 hour' WHERE refund_id = ANY($1::uuid[])", [refundIds]);

async function state(p: { id: string; processorIntentId: string }, refundId: string) {
  const r = await replicas.pool.query<{ status: string; processor_refund_id: string | null }>("SELECT status, processor_refund_id FROM pay_refunds WHERE refund_id = $1", [refundId]);
  const intent = await replicas.pool.query<{ refunded: string }>("SELECT refunded::text FROM pay_intents WHERE intent_id = $1", [p.id]);
  const journals = await replicas.pool.query<{ n: string }>("SELECT count(*)::text AS n FROM pay_journals WHERE journal_id = $1", [`refund:${refundId}`]);
  const events = await replicas.pool.query<{ n: string }>("SELECT count(*)::text AS n FROM pay_outbox WHERE event_id = $1", [`refund:${refundId}`]);
  return {
    status: r.rows[0].status,
    processorRefundId: r.rows[0].processor_refund_id,
    intentRefunded: Number(intent.rows[0].refunded),
    journals: Number(journals.rows[0].n),
    events: Number(events.rows[0].n),
    atProcessor: fake.refunds.filter((x) => x.metadata.refund_id === refundId).length,
  };
}

const reconcile = replicas.reconcile;

describe("refunds left pending are settled from the processor's record", () => {
  it("a refund the processor made but whose answer was lost ends succeeded, once", async () => {
    const p = await payment(10_000);
    const { key, refundId } = await pendingRefund(p, "answer-lost", 4_000);
    // The processor paid it once (the SDK's retries carried the same idempotency key).
    expect(fake.refunds.filter((x) => x.metadata.refund_id === refundId)).toHaveLength(1);
    // Not yet past the age: left alone.
    await reconcile();
    expect((await state(p, refundId)).status).toBe("pending");

    await age([refundId]);
    const rec = await reconcile();
    expect(rec.status, JSON.stringify(rec.body)).toBe(200);
    expect(rec.body.refunds).toEqual([{ refundId, intentId: p.id, outcome: "succeeded" }]);
    expect(await state(p, refundId)).toMatchObject({ status: "succeeded", intentRefunded: 4_000, journals: 1, events: 1, atProcessor: 1 });
    expect((await state(p, refundId)).processorRefundId).toMatch(/^re_/);
    // A retry of the key answers the settled refund; another pass changes nothing.
    const again = await refund(p.id, key, 4_000);
    expect([again.status, again.body.refunded]).toEqual([200, 4_000]);
    expect((await reconcile()).body.refunds).toEqual([]);
    expect(await state(p, refundId)).toMatchObject({ status: "succeeded", intentRefunded: 4_000, journals: 1, events: 1, atProcessor: 1 });
  }, 60_000);

  it("a refund the processor never received ends failed, and the payment can be refunded again", async () => {
    const p = await payment(10_000);
    const { key, refundId } = await pendingRefund(p, "unreachable", 10_000);
    expect(fake.refunds.filter((x) => x.payment_intent === p.processorIntentId)).toHaveLength(0);
    // While it is pending, its amount is held: nothing is left to refund.
    const held = await refund(p.id, `held-${randomUUID()}`);
    expect([held.status, held.body.error?.code]).toEqual([409, "REFUND_EXCEEDS_PAYMENT"]);

    await age([refundId]);
    const rec = await reconcile();
    expect(rec.body.refunds).toEqual([{ refundId, intentId: p.id, outcome: "never_reached_processor" }]);
    expect(await state(p, refundId)).toMatchObject({ status: "failed", intentRefunded: 0, journals: 0, events: 0, atProcessor: 0 });

    // Released: a refund with a new key pays 6,000 of it...
    const next = await refund(p.id, `again-${randomUUID()}`, 6_000);
    expect([next.status, next.body.refunded], JSON.stringify(next.body)).toEqual([200, 6_000]);
    // ...and a retry of the first key sends that refund again, for what it still fits: 10,000 does not.
    const retry = await refund(p.id, key, 10_000);
    expect([retry.status, retry.body.error?.code]).toEqual([409, "REFUND_EXCEEDS_PAYMENT"]);
    expect(fake.refunds.filter((x) => x.payment_intent === p.processorIntentId).map((x) => x.amount)).toEqual([6_000]);
  }, 60_000);

  it("two replicas sweeping at once settle each refund once", async () => {
    const made: { p: { id: string; processorIntentId: string }; refundId: string; want: "succeeded" | "failed" }[] = [];
    for (let i = 0; i < 6; i++) {
      const p = await payment(5_000);
      const how = i % 2 === 0 ? ("answer-lost" as const) : ("unreachable" as const);
      const { refundId } = await pendingRefund(p, how, 2_000);
      made.push({ p, refundId, want: how === "answer-lost" ? "succeeded" : "failed" });
    }
    await age(made.map((m) => m.refundId));
    // Each lookup at the processor takes a while, so the two passes overlap.
    fake.refundListDelayMs = 150;
    const [a, b] = await Promise.all([reconcile(bases[0]), reconcile(bases[1])]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const outcomes = [...a.body.refunds, ...b.body.refunds].filter((r: { refundId: string }) => made.some((m) => m.refundId === r.refundId));
    // Every refund settled by exactly one of the two, and both took part.
    expect(outcomes.map((r: { refundId: string }) => r.refundId).sort()).toEqual(made.map((m) => m.refundId).sort());
    expect(a.body.refunds.length).toBeGreaterThan(0);
    expect(b.body.refunds.length).toBeGreaterThan(0);
    for (const m of made) {
      const s = await state(m.p, m.refundId);
      if (m.want === "succeeded") expect(s).toMatchObject({ status: "succeeded", intentRefunded: 2_000, journals: 1, events: 1, atProcessor: 1 });
      else expect(s).toMatchObject({ status: "failed", intentRefunded: 0, journals: 0, events: 0, atProcessor: 0 });
    }
  }, 120_000);
});
