/**
 * The processor's amount and currency of our refund were compared only in its webhooks: its answer to
 * our create call, the reconciler's lookup of a pending refund and the re-check of a succeeded one
 * applied the status whatever amount or currency the processor reported (a refund of 25.00 answered for
 * our 30.00 was booked at 30.00; one failed there in another amount was reversed). Every place now
 * compares them first (refund-repo.ts matchesProcessor): a report of another amount or currency is not
 * applied (pending stays pending and held, succeeded stays booked), recorded once for an operator
 * (GET /refund-issues, `amount_mismatch` / `currency_mismatch`, payment_refund_issues_total{kind}), and
 * resolved once the processor's record matches ours again (then applied as ever).
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FakeCardProcessor } from "../fakes/card-processor";
import { http } from "../trading/e2e-helpers";
import { admin, refundIssuesCounted, usePaymentReplicas } from "./payment-replicas";

const fake = new FakeCardProcessor();
const replicas = usePaymentReplicas(fake, {
  env: { PAYMENT_PROCESSOR_TIMEOUT_MS: "2000" },
  webhooksToFirst: true,
  resetFake: () => {
    fake.refundStatus = "succeeded";
    fake.refundRequests = "ok";
    fake.refundsDiverge = undefined;
  },
});
const { bases, payment, refund, trader } = replicas;
const q = (sql: string, args: unknown[]) => replicas.pool.query(sql, args);
const view = async (intentId: string) => (await http("GET", `${bases[0]}/intents/${intentId}`, { headers: trader })).body;
const issuesOf = async (intentId: string, status = "open") =>
  ((await http("GET", `${bases[1]}/refund-issues?status=${status}`, { headers: admin })).body.issues as Record<string, unknown>[]).filter((i) => i.intentId === intentId);
/** Journals and payments.events (outbox) rows of the refund: booked, reversed, announced. */
const booked = async (refundId: string) =>
  Number((await q("SELECT count(*) AS n FROM pay_journals WHERE journal_id LIKE $1", [`refund%:${refundId}`])).rows[0].n) +
  Number((await q("SELECT count(*) AS n FROM pay_outbox WHERE event_id LIKE $1", [`refund:${refundId}%`])).rows[0].n);
const refundRow = async (refundId: string) => (await q("SELECT status, processor_refund_id FROM pay_refunds WHERE refund_id = $1", [refundId])).rows[0];
const mine = (list: { refundId: string }[], refundId: string) => list.filter((x) => x.refundId === refundId);
/** One reconciliation pass with the refund's last send an hour ago (past the in-flight bound): its results for the refund. */
async function sweep(refundId: string) {
  await q("UPDATE pay_refunds SET sent_at = now() - interval '1 hour' WHERE refund_id = $1", [refundId]);
  return mine((await replicas.reconcile()).body.refunds, refundId);
}
const metric = (kind: string) => refundIssuesCounted(bases[0], kind);

describe("a refund the processor reports with another amount or currency than ours", () => {
  it("in its answer to our refund: left pending and held, not booked; recorded once; its webhook and the sweep too; settled once the processor's record matches", async () => {
    const p = await payment(5_000);
    const before = await metric("amount_mismatch");
    fake.refundsDiverge = { amountOff: -500 };
    const key = `r-${randomUUID()}`;
    const r = await refund(p.id, key, 3_000);
    expect([r.status, r.body.refunded, r.body.refund?.status], JSON.stringify(r.body)).toEqual([200, 0, "pending"]);
    const refundId: string = r.body.refund.id;
    const atProcessor = fake.refundOf(refundId);
    expect([atProcessor.amount, atProcessor.status]).toEqual([2_500, "succeeded"]);
    expect(await booked(refundId)).toBe(0);
    expect(await issuesOf(p.id)).toEqual([
      expect.objectContaining({ kind: "amount_mismatch", refundId, processorRefundId: atProcessor.id, amount: 3_000, processorAmount: 2_500, processorCurrency: "usd", processorStatus: "succeeded", seen: 1, resolvedAt: null }),
    ]);
    // A retry of the key asks again (the processor replays its answer): still pending, the issue only counted.
    const again = await refund(p.id, key, 3_000);
    expect([again.status, again.body.refund?.status]).toEqual([200, "pending"]);
    // Its webhook carries the same amount: `mismatch`, not applied.
    expect(await fake.deliverAll(fake.webhooks.filter((w) => (w.event.data.object as { id?: string }).id === atProcessor.id))).toEqual(["mismatch"]);
    // The sweep looks it up: the same, left pending.
    expect(await sweep(refundId)).toEqual([{ refundId, intentId: p.id, outcome: "mismatch" }]);
    expect(await issuesOf(p.id)).toEqual([expect.objectContaining({ kind: "amount_mismatch", seen: 4 })]);
    expect((await metric("amount_mismatch")) - before).toBe(1);
    // Held against the payment all along: 2,000 is left, no more.
    expect((await refund(p.id, `r-${randomUUID()}`, 2_500)).body.error?.code).toBe("REFUND_EXCEEDS_PAYMENT");
    expect([(await view(p.id)).refunded, await booked(refundId), (await refundRow(refundId)).status]).toEqual([0, 0, "pending"]);

    // The processor's record is corrected: the next lookup books it, and the issue is resolved.
    atProcessor.amount = 3_000;
    expect(await sweep(refundId)).toEqual([{ refundId, intentId: p.id, outcome: "succeeded" }]);
    expect((await view(p.id)).refunded).toBe(3_000);
    expect(await issuesOf(p.id)).toEqual([]);
    expect(await issuesOf(p.id, "all")).toEqual([expect.objectContaining({ kind: "amount_mismatch", refundId, resolvedAt: expect.any(String) })]);
  }, 120_000);

  it("in the sweep's lookup of a refund whose answer was lost: left pending, neither booked nor released", async () => {
    const p = await payment(4_000);
    fake.refundsDiverge = { currency: "eur" };
    fake.refundRequests = "answer-lost";
    const lost = await refund(p.id, `r-${randomUUID()}`, 4_000);
    expect(lost.status).toBe(502);
    fake.refundRequests = "ok";
    const refundId = (await q("SELECT refund_id FROM pay_refunds WHERE intent_id = $1", [p.id])).rows[0].refund_id as string;
    expect(await sweep(refundId)).toEqual([{ refundId, intentId: p.id, outcome: "mismatch" }]);
    expect(await sweep(refundId)).toEqual([{ refundId, intentId: p.id, outcome: "mismatch" }]);
    expect(await refundRow(refundId)).toEqual({ status: "pending", processor_refund_id: null });
    expect([(await view(p.id)).refunded, await booked(refundId)]).toEqual([0, 0]);
    expect(await issuesOf(p.id)).toEqual([
      expect.objectContaining({ kind: "currency_mismatch", refundId, amount: 4_000, processorAmount: 4_000, processorCurrency: "eur", seen: 2, resolvedAt: null }),
    ]);
  }, 60_000);

  it("in a re-check of a succeeded refund, and in webhooks: a failure there in another amount is not reversed", async () => {
    const p = await payment(2_000);
    const r = await refund(p.id, `r-${randomUUID()}`, 2_000);
    expect([r.status, r.body.refunded]).toEqual([200, 2_000]);
    const refundId: string = r.body.refund.id;
    const atProcessor = fake.refundOf(refundId);
    // The processor's record diverges, and it fails there; its webhooks are lost for now.
    atProcessor.amount = 1_500;
    const lost = fake.updateRefund(atProcessor.id, "failed");
    const recheck = async () => {
      await q("UPDATE pay_refunds SET succeeded_at = now() - interval '7 hours', rechecked_at = NULL WHERE refund_id = $1", [refundId]);
      return mine((await replicas.reconcile()).body.rechecked, refundId);
    };
    expect(await recheck()).toEqual([{ refundId, intentId: p.id, outcome: "mismatch" }]);
    expect(await fake.deliverAll(lost)).toEqual(["mismatch", "mismatch", "mismatch"]);
    expect([(await view(p.id)).refunded, (await refundRow(refundId)).status, await booked(refundId)]).toEqual([2_000, "succeeded", 2]);
    expect(await issuesOf(p.id)).toEqual([expect.objectContaining({ kind: "amount_mismatch", refundId, amount: 2_000, processorAmount: 1_500, processorStatus: "failed", seen: 4 })]);
    // In another currency in its webhook: an issue of that kind (an amount in another currency is none of ours).
    atProcessor.currency = "gbp";
    expect(await fake.deliverAll(fake.updateRefund(atProcessor.id, "failed"))).toEqual(["mismatch", "mismatch", "mismatch"]);
    expect((await issuesOf(p.id)).map((i) => i.kind).sort()).toEqual(["amount_mismatch", "currency_mismatch"]);

    // As ours again: the next re-check reverses it as its webhook would have, and both issues are resolved.
    Object.assign(atProcessor, { amount: 2_000, currency: "usd" });
    expect(await recheck()).toEqual([{ refundId, intentId: p.id, outcome: "reversed" }]);
    expect((await view(p.id)).refunded).toBe(0);
    expect(await issuesOf(p.id)).toEqual([]);
  }, 60_000);
});
