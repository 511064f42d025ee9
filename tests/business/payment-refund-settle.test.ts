/**
 * A pending refund the processor records with another amount or currency than ours (an amount_mismatch /
 * currency_mismatch refund issue) stayed pending and held for ever unless the processor's record came
 * to match: no operator action settled it. An admin now settles it (POST /refund-issues/:id/settle,
 * refund-issue-settle.ts): the refund is read again from the processor and its final state applied as
 * the processor records it (succeeded: booked at the processor's amount and currency, the difference
 * shown on the refund and the issue; failed: released), never an amount the operator types; 409 while
 * the processor still has it pending, 404 for no such issue, 409 once resolved; who, how and why kept.
 * Nothing is booked twice: one journal, one payments.events message, whatever arrives afterwards.
 * Also: a refund made on the processor's dashboard in another currency than the payment is recorded once
 * as a currency_mismatch issue, its webhooks answered 200 `mismatch`, nothing booked.
 * Real PostgreSQL and Kafka; the card processor is tests/fakes/card-processor.ts.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FakeCardProcessor, type FakeRefund } from "../fakes/card-processor";
import { http } from "../trading/e2e-helpers";
import { admin, refundIssuesCounted, usePaymentReplicas } from "./payment-replicas";

const fake = new FakeCardProcessor();
/** The replicas' log lines; for a settle's, whether its issue read as resolved from another connection as it was logged. */
const logs: Record<string, unknown>[] = [];
const settledSeen = new Map<string, Promise<boolean>>();
const replicas = usePaymentReplicas(fake, {
  env: { PAYMENT_PROCESSOR_TIMEOUT_MS: "2000" },
  webhooksToFirst: true,
  resetFake: () => {
    fake.refundStatus = "succeeded";
    fake.refundsDiverge = undefined;
  },
  onLog: (line) => {
    logs.push(line);
    if (line.msg === SETTLED_LOG) settledSeen.set(String(line.issueId), q("SELECT resolved_at FROM pay_refund_issues WHERE issue_id = $1", [line.issueId]).then((r) => r.rows[0]?.resolved_at != null));
  },
});
const SETTLED_LOG = "refund issue settled by an operator from the processor's record";
const { bases, payment, refund, trader } = replicas;
const q = (sql: string, args: unknown[]) => replicas.pool.query(sql, args);
const view = async (intentId: string) => (await http("GET", `${bases[0]}/intents/${intentId}`, { headers: trader })).body;
const issuesOf = async (intentId: string, status = "open") =>
  ((await http("GET", `${bases[1]}/refund-issues?status=${status}`, { headers: admin })).body.issues as Record<string, unknown>[]).filter((i) => i.intentId === intentId);
const settle = (id: string, note = "read the processor's record: settled as it has it", headers: Record<string, string> = admin, base = bases[0]) =>
  http("POST", `${base}/refund-issues/${id}/settle`, { body: { note }, headers });
/** The refund's journals and payments.events messages (outbox): type, currency and amount of each. */
const money = async (refundId: string) => ({
  journals: (await q("SELECT journal_id FROM pay_journals WHERE journal_id LIKE $1 ORDER BY journal_id", [`refund%:${refundId}`])).rows.map((r) => r.journal_id),
  events: (await q("SELECT payload FROM pay_outbox WHERE event_id LIKE $1 ORDER BY id", [`refund:${refundId}%`])).rows.map((r) => [r.payload.type, r.payload.currency, r.payload.refundedAmount]),
});
const ofRefund = (atProcessor: FakeRefund) => fake.webhooks.filter((w) => (w.event.data.object as { id?: string }).id === atProcessor.id);

/** A refund of `amount` of a new payment of `paid` that the processor makes as `diverge` says, `status`: pending here, its issue open. */
async function mismatched(paid: number, amount: number, diverge: { amountOff?: number; currency?: string }, status: "pending" | "succeeded" = "pending") {
  const p = await payment(paid);
  fake.refundsDiverge = diverge;
  fake.refundStatus = status;
  const r = await refund(p.id, `r-${randomUUID()}`, amount);
  fake.refundsDiverge = undefined;
  fake.refundStatus = "succeeded";
  expect([r.status, r.body.refund?.status], JSON.stringify(r.body)).toEqual([200, "pending"]);
  const refundId: string = r.body.refund.id;
  const [issue] = await issuesOf(p.id);
  expect(issue).toMatchObject({ kind: diverge.currency ? "currency_mismatch" : "amount_mismatch", refundId, resolvedAt: null });
  return { p, refundId, issueId: issue.id as string, atProcessor: fake.refundOf(refundId) };
}

/**
 * A refund of the whole of a new payment of `paid`, booked here (succeeded), whose processor record then says
 * `processorAmount`: the re-check (hours later) finds the mismatch and opens its issue.
 */
async function bookedThenMismatched(paid: number, processorAmount: number) {
  const p = await payment(paid);
  const refundId: string = (await refund(p.id, `r-${randomUUID()}`, paid)).body.refund.id;
  const atProcessor = fake.refundOf(refundId);
  atProcessor.amount = processorAmount;
  await q("UPDATE pay_refunds SET succeeded_at = now() - interval '7 hours', rechecked_at = NULL WHERE refund_id = $1", [refundId]);
  expect((await replicas.reconcile()).body.rechecked.filter((x: { refundId: string }) => x.refundId === refundId)).toEqual([expect.objectContaining({ outcome: "mismatch" })]);
  const [issue] = await issuesOf(p.id);
  return { p, refundId, atProcessor, issue };
}

describe("an operator settles a refund whose processor record differs from ours", () => {
  it("booked at the processor's amount once it succeeded there (409 while pending), once, whatever arrives afterwards", async () => {
    const { p, refundId, issueId, atProcessor } = await mismatched(5_000, 3_000, { amountOff: -500 });
    // Still pending at the processor: 409, nothing changed.
    const early = await settle(issueId);
    expect([early.status, early.body.error?.code, early.body.error?.field]).toEqual([409, "PROCESSOR_PENDING", "id"]);
    expect(await issuesOf(p.id)).toEqual([expect.objectContaining({ id: issueId, resolvedAt: null })]);
    // It succeeds there at its amount (2,500); its webhooks are `mismatch` (not applied) as before.
    const events = fake.updateRefund(atProcessor.id, "succeeded");
    expect(await fake.deliverAll(events)).toEqual(["mismatch", "mismatch"]);
    expect((await view(p.id)).refunded).toBe(0);

    const note = "processor refunded 25.00 of the 30.00 asked (partial capture)";
    const settled = await settle(issueId, note);
    expect(settled.status, JSON.stringify(settled.body)).toBe(200);
    expect(settled.body).toMatchObject({
      id: issueId, kind: "amount_mismatch", amount: 3_000, processorAmount: 2_500, processorCurrency: "usd", processorStatus: "succeeded", settledStatus: "succeeded",
      resolvedAt: expect.any(String), resolvedBy: admin["x-user-id"], resolvedAuthMethod: "jwt", resolutionNote: note,
      refund: expect.objectContaining({ id: refundId, status: "succeeded", amount: 2_500, requestedAmount: 3_000, currency: null }),
    });
    const v = await view(p.id);
    expect([v.refunded, v.refunds]).toMatchObject([2_500, [{ id: refundId, amount: 2_500, requestedAmount: 3_000, status: "succeeded" }]]);
    const once = { journals: [`refund:${refundId}`], events: [["payment.refunded", "usd", 2_500]] };
    expect(await money(refundId)).toEqual(once);
    // Settled once: again is 409 (on either replica); the webhooks replayed or sent again, the sweep and the re-check change nothing.
    for (const base of bases) expect((await settle(issueId, "again", admin, base)).body.error?.code).toBe("ISSUE_RESOLVED");
    await fake.deliverAll(events);
    await fake.deliverAll(fake.updateRefund(atProcessor.id, "succeeded"));
    await q("UPDATE pay_refunds SET succeeded_at = now() - interval '7 hours', rechecked_at = NULL WHERE refund_id = $1", [refundId]);
    const rc = await replicas.reconcile();
    expect(rc.body.rechecked.filter((x: { refundId: string }) => x.refundId === refundId)).toEqual([expect.objectContaining({ outcome: "unchanged" })]);
    expect(await money(refundId)).toEqual(once);
    expect(await issuesOf(p.id)).toEqual([]);
    // What is left of the payment is the processor's: 2,500, no more.
    expect((await refund(p.id, `r-${randomUUID()}`, 2_501)).body.error?.code).toBe("REFUND_EXCEEDS_PAYMENT");
    expect((await refund(p.id, `r-${randomUUID()}`, 2_500)).body.refunded).toBe(5_000);
  }, 120_000);

  it("released when it failed at the processor: nothing booked, refundable again", async () => {
    const { p, refundId, issueId, atProcessor } = await mismatched(4_000, 4_000, { amountOff: -1_000 });
    fake.updateRefund(atProcessor.id, "failed", { failureReason: "expired_or_canceled_card" });
    const settled = await settle(issueId);
    expect(settled.body).toMatchObject({ settledStatus: "failed", processorStatus: "failed", resolvedBy: admin["x-user-id"], refund: { status: "failed", amount: 4_000, requestedAmount: null } });
    expect(await money(refundId)).toEqual({ journals: [], events: [["payment.refund_failed", "usd", 4_000]] });
    expect((await view(p.id)).refunded).toBe(0);
    expect((await refund(p.id, `r-${randomUUID()}`, 4_000)).body.refunded).toBe(4_000);
  }, 60_000);

  it("in another currency: booked in the processor's, the payment's refunded total not moved, its amount still held", async () => {
    const { p, refundId, issueId } = await mismatched(4_000, 4_000, { currency: "eur", amountOff: -400 }, "succeeded");
    const settled = await settle(issueId);
    expect(settled.body).toMatchObject({ kind: "currency_mismatch", amount: 4_000, processorAmount: 3_600, processorCurrency: "eur", settledStatus: "succeeded", refund: { status: "succeeded", amount: 3_600, requestedAmount: 4_000, currency: "eur" } });
    expect(await money(refundId)).toEqual({ journals: [`refund:${refundId}`], events: [["payment.refunded", "eur", 3_600]] });
    const entries = (await q("SELECT currency, amount::int AS amount FROM pay_ledger_entries WHERE journal_id = $1 ORDER BY amount", [`refund:${refundId}`])).rows;
    expect(entries).toEqual([{ currency: "eur", amount: -3_600 }, { currency: "eur", amount: 3_600 }]);
    expect((await view(p.id)).refunded).toBe(0);
    expect((await refund(p.id, `r-${randomUUID()}`, 1)).body.error?.code).toBe("REFUND_EXCEEDS_PAYMENT");
    // Its later failure there is reversed in that currency.
    const failed = fake.updateRefund(fake.refundOf(refundId).id, "failed");
    expect(await fake.deliverAll(failed.slice(0, 1))).toEqual(["applied"]);
    expect((await money(refundId)).events).toEqual([["payment.refunded", "eur", 3_600], ["payment.refund_reversed", "eur", 3_600]]);
    expect((await view(p.id)).refunded).toBe(0);
  }, 60_000);

  it("is logged once its transaction committed, once", async () => {
    const { issueId } = await mismatched(3_000, 2_000, { amountOff: -200 }, "succeeded");
    expect((await settle(issueId)).status).toBe(200);
    expect(logs.filter((l) => l.msg === SETTLED_LOG && l.issueId === issueId)).toEqual([
      expect.objectContaining({ settledStatus: "succeeded", resolvedBy: admin["x-user-id"], authMethod: "jwt", processorAmount: 1_800 }),
    ]);
    // Read from another connection as the line was written: the settle was committed by then.
    expect(await settledSeen.get(issueId)).toBe(true);
  }, 60_000);

  it("two settles at once: one settles, the other is 409; nothing booked twice", async () => {
    const { refundId, issueId } = await mismatched(3_000, 2_000, { amountOff: 100 }, "succeeded");
    const both = await Promise.all(bases.map((b) => settle(issueId, "settled from the processor", admin, b)));
    expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(both.find((r) => r.status === 409)!.body.error?.code).toBe("ISSUE_RESOLVED");
    expect(await money(refundId)).toEqual({ journals: [`refund:${refundId}`], events: [["payment.refunded", "usd", 2_100]] });
  }, 60_000);

  it("is an admin's; 404, 400s naming the field, 409 for issues it cannot settle or records the processor no longer has", async () => {
    const { p, issueId, atProcessor } = await mismatched(2_000, 1_000, { amountOff: -1 }, "succeeded");
    expect((await settle(issueId, "mine now", trader)).status).toBe(403);
    expect((await settle(randomUUID())).status).toBe(404);
    expect([(await settle("not-a-uuid")).body.error?.field, (await settle(issueId, "x")).body.error?.field]).toEqual(["id", "note"]);
    // The processor lists it no more: 409, nothing changed.
    fake.refunds.splice(fake.refunds.indexOf(atProcessor), 1);
    const gone = await settle(issueId);
    expect([gone.status, gone.body.error?.code]).toEqual([409, "PROCESSOR_HAS_NO_RECORD"]);
    fake.refunds.push(atProcessor);
    // A dashboard refund in another currency: recorded once (below); nothing of ours to settle.
    const dash = fake.refundOnDashboard(p.processorIntentId, 500);
    Object.assign(dash.refund, { currency: "eur" });
    Object.assign(dash.created.event.data.object as object, { currency: "eur" });
    expect(await fake.deliverAll([dash.created])).toEqual(["mismatch"]);
    const foreign = (await issuesOf(p.id)).find((i) => i.refundId === null)!;
    const refused = await settle(foreign.id as string);
    expect([refused.status, refused.body.error?.code, refused.body.error?.field]).toEqual([409, "ISSUE_NOT_SETTLEABLE", "id"]);
    expect((await issuesOf(p.id)).length).toBe(2);
    // A currency the ledger cannot book: 409, nothing changed.
    const odd = await mismatched(2_000, 1_000, { currency: "xyz" }, "succeeded");
    expect((await settle(odd.issueId)).body.error).toMatchObject({ code: "PROCESSOR_RECORD_UNBOOKABLE", field: "id" });
    expect(await money(odd.refundId)).toEqual({ journals: [], events: [] });
  }, 60_000);

  it("of a refund booked here (a re-check's mismatch of a succeeded one): booked at the processor's amount (payment.refund_adjusted), reversed at it once it failed there", async () => {
    const { p, refundId, atProcessor, issue } = await bookedThenMismatched(2_000, 1_500);
    // Succeeded there at another amount (since session 54: 409 REFUND_BOOKED before): the processor's amount is booked, the difference journaled and announced.
    const settled = await settle(issue.id as string, "the processor paid out 15.00 of the 20.00");
    expect(settled.body).toMatchObject({ settledStatus: "succeeded", processorAmount: 1_500, refund: { id: refundId, status: "succeeded", amount: 1_500, requestedAmount: 2_000 } });
    const adjusted = { journals: [`refund-adjustment:${refundId}`, `refund:${refundId}`], events: [["payment.refunded", "usd", 2_000], ["payment.refund_adjusted", "usd", 1_500]] };
    expect(await money(refundId)).toEqual(adjusted);
    const entries = (await q("SELECT account, amount::int FROM pay_ledger_entries WHERE journal_id = $1 ORDER BY amount", [`refund-adjustment:${refundId}`])).rows;
    expect(entries.map((e) => e.amount)).toEqual([-500, 500]);
    expect(entries[0].account).toMatch(/^customer:/);
    expect([(await view(p.id)).refunded, await issuesOf(p.id)]).toEqual([1_500, []]);
    expect((await settle(issue.id as string)).body.error?.code).toBe("ISSUE_RESOLVED");
    // It fails there later (the money came back): its webhooks now match our record, so they reverse it, at the processor's amount, once.
    const failedThere = fake.updateRefund(atProcessor.id, "failed", { failureReason: "expired_or_canceled_card" });
    expect((await fake.deliverAll(failedThere)).includes("mismatch")).toBe(false);
    expect(await money(refundId)).toEqual({ journals: [`refund-adjustment:${refundId}`, `refund-reversal:${refundId}`, `refund:${refundId}`], events: [...adjusted.events, ["payment.refund_reversed", "usd", 1_500]] });
    expect((await view(p.id)).refunded).toBe(0);
  }, 60_000);

  it("of a refund booked here that the processor paid out at more than is left of the payment: 409 REFUND_EXCEEDS_PAYMENT, nothing moved", async () => {
    const { p, refundId, atProcessor, issue } = await bookedThenMismatched(2_000, 1_000);
    atProcessor.amount = 2_500;
    const r = await settle(issue.id as string);
    expect([r.status, r.body.error?.code, r.body.error?.field]).toEqual([409, "REFUND_EXCEEDS_PAYMENT", "id"]);
    expect(await money(refundId)).toEqual({ journals: [`refund:${refundId}`], events: [["payment.refunded", "usd", 2_000]] });
    expect((await view(p.id)).refunded).toBe(2_000);
  }, 60_000);

  it("of a refund booked here whose processor record matches ours again: closed, nothing moved", async () => {
    const { p, refundId, atProcessor, issue } = await bookedThenMismatched(3_000, 2_900);
    atProcessor.amount = 3_000;
    const settled = await settle(issue.id as string, "the processor corrected its record");
    expect(settled.body).toMatchObject({ settledStatus: "succeeded", processorAmount: 3_000, resolvedBy: admin["x-user-id"], refund: { id: refundId, status: "succeeded", amount: 3_000, requestedAmount: null } });
    expect(await money(refundId)).toEqual({ journals: [`refund:${refundId}`], events: [["payment.refunded", "usd", 3_000]] });
    expect([(await view(p.id)).refunded, await issuesOf(p.id)]).toEqual([3_000, []]);
  }, 60_000);
});

describe("a refund made at the processor in another currency than its payment", () => {
  it("is recorded once as a currency_mismatch issue, every delivery answered 200 mismatch; nothing booked", async () => {
    const p = await payment(3_000);
    const before = await refundIssuesCounted(bases[0], "currency_mismatch");
    const { refund: atProcessor, created } = fake.refundOnDashboard(p.processorIntentId, 1_000, "pending");
    Object.assign(atProcessor, { currency: "gbp" });
    Object.assign(created.event.data.object as object, { currency: "gbp" });
    expect(await fake.deliverAll([created, created])).toEqual(["mismatch", "duplicate"]);
    expect(await fake.deliverAll(fake.updateRefund(atProcessor.id, "succeeded"))).toEqual(["mismatch", "mismatch"]);
    expect(ofRefund(atProcessor).every((w) => w.lastStatus === 200)).toBe(true);
    expect(await issuesOf(p.id)).toEqual([
      expect.objectContaining({ kind: "currency_mismatch", refundId: null, processorRefundId: atProcessor.id, amount: 1_000, processorAmount: 1_000, processorCurrency: "gbp", processorStatus: "succeeded", seen: 3, resolvedAt: null }),
    ]);
    expect((await refundIssuesCounted(bases[0], "currency_mismatch")) - before).toBe(1);
    expect((await q("SELECT count(*)::int AS n FROM pay_refunds WHERE processor_refund_id = $1", [atProcessor.id])).rows[0].n).toBe(0);
    const v = await view(p.id);
    expect([v.refunded, v.refunds]).toEqual([0, []]);
  }, 60_000);

  it("or with no amount a refund can have: recorded once (currency_mismatch, else amount_mismatch), answered 200 mismatch, logged once", async () => {
    const p = await payment(3_000);
    const before = await Promise.all(["currency_mismatch", "amount_mismatch"].map((k) => refundIssuesCounted(bases[0], k)));
    const dashboard = (amount: unknown, currency: string) => {
      const made = fake.refundOnDashboard(p.processorIntentId, 1_000, "pending");
      for (const o of [made.refund, made.created.event.data.object as object]) Object.assign(o, { amount, currency });
      return made;
    };
    const foreign = dashboard(0, "gbp");
    const fraction = dashboard(12.5, "usd");
    for (const { refund: atProcessor, created } of [foreign, fraction]) {
      expect(await fake.deliverAll([created, created])).toEqual(["mismatch", "duplicate"]);
      expect(await fake.deliverAll(fake.updateRefund(atProcessor.id, "succeeded"))).toEqual(["mismatch", "mismatch"]);
      expect(ofRefund(atProcessor).every((w) => w.lastStatus === 200)).toBe(true);
      expect(logs.filter((l) => l.processorRefundId === atProcessor.id && l.level === 50)).toHaveLength(1);
    }
    const issues = await issuesOf(p.id);
    expect(issues).toEqual(expect.arrayContaining([
      expect.objectContaining({ kind: "currency_mismatch", refundId: null, processorRefundId: foreign.refund.id, amount: 0, processorAmount: 0, processorCurrency: "gbp", seen: 3 }),
      expect.objectContaining({ kind: "amount_mismatch", refundId: null, processorRefundId: fraction.refund.id, amount: 0, processorAmount: null, processorCurrency: "usd", seen: 3 }),
    ]));
    expect(issues).toHaveLength(2);
    const after = await Promise.all(["currency_mismatch", "amount_mismatch"].map((k) => refundIssuesCounted(bases[0], k)));
    expect([after[0] - before[0], after[1] - before[1]]).toEqual([1, 1]);
    expect((await view(p.id)).refunds).toEqual([]);
  }, 60_000);
});
