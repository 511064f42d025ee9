/**
 * A processor that stalls while the refund reconciler asks it (found after session 39): the sweep
 * called the processor inside the transaction that held the refund's row and its payment's row
 * (FOR UPDATE), so for as long as the processor took (up to every attempt of the SDK) another refund
 * of that payment, a retry of the refund's own key and a webhook for the payment all waited, and
 * each refund looked up held a pool connection. The sweep now claims the refund with a committed
 * lease, asks the processor with no transaction open, and settles in a new short transaction only
 * if the refund is still pending and still claimed by this pass.
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts through the `stripe` SDK,
 * its refund list held open by the test.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FakeCardProcessor } from "../fakes/card-processor";
import { usePaymentReplicas } from "./payment-replicas";
import { PATIENCE_MS, within } from "../helpers/patience";
import { waitUntil } from "../trading/e2e-helpers";

const fake = new FakeCardProcessor();
const replicas = usePaymentReplicas(fake, {
  env: { PAYMENT_PROCESSOR_TIMEOUT_MS: "20000" },
  webhooksToFirst: true,
  resetFake: () => {
    fake.refundRequests = "ok";
    fake.refundListHold = undefined;
  },
});
const { bases, payment, refund, reconcile } = replicas;

/** A refund whose answer was lost ("answer-lost": the processor made it) or never arrived ("unreachable"), pending an hour since its send. */
async function agedPendingRefund(p: { id: string }, how: "answer-lost" | "unreachable", amount: number): Promise<{ key: string; refundId: string }> {
  fake.refundRequests = how;
  const key = `r-${randomUUID()}`;
  try {
    const r = await refund(p.id, key, amount);
    expect(r.status, JSON.stringify(r.body)).toBe(502);
  } finally {
    fake.refundRequests = "ok";
  }
  const { rows } = await replicas.pool.query<{ refund_id: string }>(
    "UPDATE pay_refunds SET sent_at = now() - interval '1 hour', created_at = now() - interval '1 hour' WHERE intent_id = $1 AND idempotency_key = $2 AND status = 'pending' RETURNING refund_id",
    [p.id, key],
  );
  expect(rows).toHaveLength(1);
  return { key, refundId: rows[0].refund_id };
}

/** Starts replica 0's pass with the processor's refund list held open, and resolves once the lookup is at the processor. */
async function stalledSweep(): Promise<{ sweep: ReturnType<typeof reconcile>; release: () => void }> {
  let release!: () => void;
  fake.refundListHold = new Promise<void>((r) => (release = r));
  const before = fake.refundListsReceived;
  const sweep = reconcile(bases[0]);
  await waitUntil("the sweep's lookup at the processor", async () => fake.refundListsReceived !== before, PATIENCE_MS, 20);
  return { sweep, release };
}

/**
 * `p`, or a failure naming what waited: the old code held the payment's row for the whole stall, which
 * lasts until the test releases it (so the bound only guards against a hang).
 */
const prompt = <T>(what: string, p: Promise<T>): Promise<T> => within(p, PATIENCE_MS, `${what} (blocked behind the stalled reconciliation?)`);

/** A signed `payment_intent.succeeded` for the payment again (a redelivery): settle() locks the payment's row to apply it. */
function webhookFor(processorIntentId: string) {
  const body = JSON.stringify({ id: `evt_${randomUUID().replace(/-/g, "")}`, object: "event", type: "payment_intent.succeeded", created: Math.floor(Date.now() / 1000), data: { object: fake.intents.get(processorIntentId) } });
  return fetch(`${bases[0]}/webhooks/processor`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": fake.sign(body) }, body }).then(async (r) => ({ status: r.status, body: await r.json() }));
}

async function state(p: { id: string }, refundId: string) {
  const r = await replicas.pool.query<{ status: string; failure_code: string | null }>("SELECT status, failure_code FROM pay_refunds WHERE refund_id = $1", [refundId]);
  const intent = await replicas.pool.query<{ refunded: string }>("SELECT refunded::text FROM pay_intents WHERE intent_id = $1", [p.id]);
  const journals = await replicas.pool.query<{ n: string }>("SELECT count(*)::text AS n FROM pay_journals WHERE journal_id = $1", [`refund:${refundId}`]);
  const events = await replicas.pool.query<{ n: string }>("SELECT count(*)::text AS n FROM pay_outbox WHERE event_id = $1", [`refund:${refundId}`]);
  return {
    status: r.rows[0].status,
    failureCode: r.rows[0].failure_code,
    intentRefunded: Number(intent.rows[0].refunded),
    journals: Number(journals.rows[0].n),
    events: Number(events.rows[0].n),
    atProcessor: fake.refunds.filter((x) => x.metadata.refund_id === refundId).length,
  };
}

describe("the refund reconciler holds no lock while the processor stalls", () => {
  it("another refund of the payment, a webhook for it and a second replica's pass go on during the stall; the refund is settled once", async () => {
    const p = await payment(10_000);
    const { refundId } = await agedPendingRefund(p, "answer-lost", 3_000);
    const { sweep, release } = await stalledSweep();
    try {
      const other = await prompt("a refund with another key", refund(p.id, `other-${randomUUID()}`, 2_000));
      expect([other.status, other.body.refunded], JSON.stringify(other.body)).toEqual([200, 2_000]);
      const hook = await prompt("a webhook for the payment", webhookFor(p.processorIntentId));
      expect(hook.status, JSON.stringify(hook.body)).toBe(200);
      // The other replica does not take the refund this pass is asking about.
      const second = await prompt("the other replica's pass", reconcile(bases[1]));
      expect(second.status).toBe(200);
      expect(second.body.refunds.map((r: { refundId: string }) => r.refundId)).not.toContain(refundId);
    } finally {
      release();
    }
    const rec = await sweep;
    expect(rec.status, JSON.stringify(rec.body)).toBe(200);
    expect(rec.body.refunds).toEqual([{ refundId, intentId: p.id, outcome: "succeeded" }]);
    expect(await state(p, refundId)).toMatchObject({ status: "succeeded", intentRefunded: 5_000, journals: 1, events: 1, atProcessor: 1 });
    expect((await reconcile(bases[1])).body.refunds).toEqual([]);
  }, 60_000);

  it("a retry of the refund's key during the stall settles it from the request path; the stalled pass then leaves it", async () => {
    const p = await payment(10_000);
    const { key, refundId } = await agedPendingRefund(p, "answer-lost", 4_000);
    const { sweep, release } = await stalledSweep();
    try {
      const retry = await prompt("a retry of the refund's key", refund(p.id, key, 4_000));
      expect([retry.status, retry.body.refunded], JSON.stringify(retry.body)).toEqual([200, 4_000]);
    } finally {
      release();
    }
    const rec = await sweep;
    expect(rec.body.refunds).toEqual([{ refundId, intentId: p.id, outcome: "superseded" }]);
    expect(await state(p, refundId)).toMatchObject({ status: "succeeded", intentRefunded: 4_000, journals: 1, events: 1, atProcessor: 1 });
  }, 60_000);

  it("a refund the processor had not seen, sent again by a retry during the stall, is not failed on the stalled pass's stale answer", async () => {
    const p = await payment(10_000);
    const { key, refundId } = await agedPendingRefund(p, "unreachable", 5_000);
    // The stalled lookup read the processor's list before the retry: no such refund.
    const { sweep, release } = await stalledSweep();
    try {
      // The retry reaches the processor, which makes the refund; its answer is lost again.
      fake.refundRequests = "answer-lost";
      const retry = await prompt("a retry of the refund's key", refund(p.id, key, 5_000));
      expect(retry.status, JSON.stringify(retry.body)).toBe(502);
    } finally {
      fake.refundRequests = "ok";
      release();
    }
    const rec = await sweep;
    expect(rec.body.refunds).toEqual([{ refundId, intentId: p.id, outcome: "superseded" }]);
    // Still pending (the processor has paid it): its amount stays held, and a later pass finds it succeeded.
    expect(await state(p, refundId)).toMatchObject({ status: "pending", intentRefunded: 0, journals: 0, atProcessor: 1 });
    await replicas.pool.query("UPDATE pay_refunds SET sent_at = now() - interval '1 hour' WHERE refund_id = $1", [refundId]);
    expect((await reconcile(bases[1])).body.refunds).toEqual([{ refundId, intentId: p.id, outcome: "succeeded" }]);
    expect(await state(p, refundId)).toMatchObject({ status: "succeeded", intentRefunded: 5_000, journals: 1, events: 1, atProcessor: 1 });
  }, 60_000);
});
