/**
 * Refunds an operator has to look at (refund-issues.ts, migration 0484, GET /refund-issues):
 * - a refund the processor reports succeeded that does not fit into what is left of the payment here
 *   hit pay_intents' CHECK (refunded <= amount): the webhook answered 500 and the processor retried it
 *   for days. It is decided under the payment's lock before any write: not booked, recorded once,
 *   answered 200 `exceeds_payment`, whatever number of its events arrive and on whichever replica;
 * - a succeeded refund the processor's list does not return was logged as an error at every re-check:
 *   recorded once (payment_refund_issues_total counts it once), re-checked on, resolved once found.
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FakeCardProcessor, type FakeRefund, type WebhookDelivery } from "../fakes/card-processor";
import { http } from "../trading/e2e-helpers";
import { admin, refundIssuesCounted, usePaymentReplicas } from "./payment-replicas";

const fake = new FakeCardProcessor();
const replicas = usePaymentReplicas(fake, {
  env: { PAYMENT_PROCESSOR_TIMEOUT_MS: "2000" },
  webhooksToFirst: true,
  resetFake: () => {
    fake.refundStatus = "succeeded";
    fake.refusesExcessRefunds = true;
  },
});
const { bases, payment, refund, trader } = replicas;
const q = (sql: string, args: unknown[]) => replicas.pool.query(sql, args);
const view = async (intentId: string) => (await http("GET", `${bases[0]}/intents/${intentId}`, { headers: trader })).body;
const issues = async (status = "open") => (await http("GET", `${bases[1]}/refund-issues?status=${status}`, { headers: admin })).body.issues as Record<string, unknown>[];
const issuesOf = async (intentId: string, status = "open") => (await issues(status)).filter((i) => i.intentId === intentId);
/** Journals and payments.events (outbox) rows of the refund: booked, reversed, announced. */
const booked = async (refundId: string) =>
  Number((await q("SELECT count(*) AS n FROM pay_journals WHERE journal_id LIKE $1", [`refund%:${refundId}`])).rows[0].n) +
  Number((await q("SELECT count(*) AS n FROM pay_outbox WHERE event_id LIKE $1", [`refund:${refundId}%`])).rows[0].n);
/** The processor's list stops returning the refund (it diverges from its events); answers a way to put it back. */
function hide(r: FakeRefund): () => void {
  fake.refunds.splice(fake.refunds.indexOf(r), 1);
  return () => void fake.refunds.push(r);
}
const post = async (base: string, w: WebhookDelivery) => {
  const body = JSON.stringify(w.event);
  const res = await fetch(`${base}/webhooks/processor`, { method: "POST", headers: { "content-type": "application/json", "stripe-signature": fake.sign(body) }, body });
  return [res.status, ((await res.json()) as { outcome?: string }).outcome];
};
const metric = (kind: string) => refundIssuesCounted(bases[0], kind);

describe("a refund the processor reports succeeded past what is left of the payment", () => {
  it("ours, failed here while the processor made it, after another refund took the rest: 200 exceeds_payment, not booked, recorded once", async () => {
    const p = await payment(5_000);
    fake.refundStatus = "pending";
    const first = await refund(p.id, `r-${randomUUID()}`, 3_000);
    expect([first.status, first.body.refund?.status]).toEqual([200, "pending"]);
    const r1: string = first.body.refund.id;
    const atProcessor = fake.refundOf(r1);
    // The processor's list does not return it: past the in-flight bound the sweep fails it as never received.
    const restore = hide(atProcessor);
    await q("UPDATE pay_refunds SET sent_at = now() - interval '1 hour' WHERE refund_id = $1", [r1]);
    expect((await replicas.reconcile()).body.refunds).toEqual([{ refundId: r1, intentId: p.id, outcome: "never_reached_processor" }]);
    restore();
    // Released: the whole payment is refunded by another refund.
    fake.refundStatus = "succeeded";
    fake.refusesExcessRefunds = false;
    const rest = await refund(p.id, `r-${randomUUID()}`);
    expect([rest.status, rest.body.refunded]).toEqual([200, 5_000]);

    // The processor had made the first after all, and it succeeds: its events, on both replicas at once, and again.
    const events = fake.updateRefund(atProcessor.id, "succeeded");
    expect(await Promise.all(events.map((w, i) => post(bases[i % 2], w)))).toEqual(events.map(() => [200, "exceeds_payment"]));
    expect(await Promise.all(events.map((w) => post(bases[0], w)))).toEqual(events.map(() => [200, "duplicate"]));
    const v = await view(p.id);
    expect(v.refunded).toBe(5_000);
    expect(v.refunds.find((x: { id: string }) => x.id === r1)).toMatchObject({ status: "failed", failureCode: "never_reached_processor" });
    expect(await booked(r1)).toBe(0);
    const listed = await issuesOf(p.id);
    expect(listed).toEqual([
      expect.objectContaining({ kind: "exceeds_payment", refundId: r1, processorRefundId: atProcessor.id, amount: 3_000, processorStatus: "succeeded", seen: events.length, resolvedAt: null }),
    ]);
    // It fails at the processor later (a closed card): nothing was booked, nothing is reversed; the issue is resolved.
    expect(await Promise.all(fake.updateRefund(atProcessor.id, "failed").map((w) => post(bases[0], w)))).toEqual([[200, "applied"], [200, "applied"], [200, "applied"]]);
    expect(await issuesOf(p.id)).toEqual([]);
    expect([(await view(p.id)).refunded, await booked(r1)]).toEqual([5_000, 0]);
  }, 120_000);

  it("ours and a dashboard refund racing: the dashboard's is not recorded as a refund but as an issue, once", async () => {
    const p = await payment(5_000);
    fake.refundStatus = "pending";
    const ours = await refund(p.id, `r-${randomUUID()}`, 4_000); // held: 1,000 left here
    expect(ours.body.refund.status).toBe("pending");
    const before = await metric("exceeds_payment");
    const { refund: dash, created } = fake.refundOnDashboard(p.processorIntentId, 3_000);
    expect(await fake.deliver(created)).toBe("exceeds_payment");
    expect(await fake.deliver(created)).toBe("duplicate");
    expect(await Promise.all(fake.updateRefund(dash.id, "succeeded").map((w) => fake.deliver(w)))).toEqual(["exceeds_payment", "exceeds_payment"]);
    // One beyond the payment itself (amounts diverging from ours): an issue too, not ignored.
    const { created: huge } = fake.refundOnDashboard(p.processorIntentId, 6_000);
    expect(await fake.deliver(huge)).toBe("exceeds_payment");
    const v = await view(p.id);
    expect([v.refunded, v.refunds.length]).toEqual([0, 1]);
    expect(await issuesOf(p.id)).toEqual([
      expect.objectContaining({ kind: "exceeds_payment", refundId: null, amount: 6_000, seen: 1 }),
      expect.objectContaining({ kind: "exceeds_payment", refundId: null, processorRefundId: dash.id, amount: 3_000, processorStatus: "succeeded", seen: 3 }),
    ]);
    expect((await metric("exceeds_payment")) - before).toBe(2);
    // The dashboard's fails at the processor after all: no money went, its issue is resolved (still listed with ?status=all).
    expect(await Promise.all(fake.updateRefund(dash.id, "failed").map((w) => fake.deliver(w)))).toEqual(["applied", "applied", "applied"]);
    expect(await issuesOf(p.id)).toEqual([expect.objectContaining({ amount: 6_000 })]);
    expect(await issuesOf(p.id, "all")).toEqual(expect.arrayContaining([expect.objectContaining({ processorRefundId: dash.id, resolvedAt: expect.any(String) })]));
    expect((await view(p.id)).refunded).toBe(0);
  }, 60_000);
});

describe("a succeeded refund the processor's list does not return", () => {
  it("is recorded for an operator once (logged and counted once), re-checked on, and resolved once listed again", async () => {
    const p = await payment(2_000);
    const r = await refund(p.id, `r-${randomUUID()}`, 2_000);
    const refundId: string = r.body.refund.id;
    const restore = hide(fake.refundOf(refundId));
    const before = await metric("not_found");
    const recheck = async () => {
      await q("UPDATE pay_refunds SET succeeded_at = now() - interval '7 hours', rechecked_at = NULL WHERE refund_id = $1", [refundId]);
      return (await replicas.reconcile()).body.rechecked.filter((x: { refundId: string }) => x.refundId === refundId);
    };
    for (let i = 0; i < 3; i++) expect(await recheck()).toEqual([{ refundId, intentId: p.id, outcome: "not_found" }]);
    expect(await issuesOf(p.id)).toEqual([expect.objectContaining({ kind: "not_found", refundId, amount: 2_000, processorStatus: null, seen: 3, resolvedAt: null })]);
    expect((await metric("not_found")) - before).toBe(1);
    // Still succeeded here: not found is for an operator to judge, nothing is reversed on a missing record.
    expect((await view(p.id)).refunded).toBe(2_000);
    restore();
    expect(await recheck()).toEqual([{ refundId, intentId: p.id, outcome: "unchanged" }]);
    expect(await issuesOf(p.id)).toEqual([]);
    expect(await issuesOf(p.id, "all")).toEqual([expect.objectContaining({ kind: "not_found", refundId, resolvedAt: expect.any(String) })]);
  }, 60_000);

  it("GET /refund-issues is an admin's; its query is validated", async () => {
    const t = await http("GET", `${bases[0]}/refund-issues`, { headers: trader });
    expect(t.status).toBe(403);
    const bad = await http("GET", `${bases[0]}/refund-issues?status=closed`, { headers: admin });
    expect([bad.status, bad.body.error?.field]).toEqual([400, "status"]);
    const big = await http("GET", `${bases[0]}/refund-issues?limit=501`, { headers: admin });
    expect([big.status, big.body.error?.field]).toEqual([400, "limit"]);
  }, 30_000);
});
