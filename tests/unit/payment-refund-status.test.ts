/**
 * How a refund follows the processor's reports (payment-service domain/refund-status.ts): forward in
 * the processor's state order only, pending <-> requires_action by the event's time, and what the
 * money does on each move.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fromPaymentEvent } from "../../services/src/services/notification-service/domain";
import { mismatchOf, processorRefundStatus, type RefundState, refundStep, reportOf } from "../../services/src/services/payment-service/domain/refund-status";

const state = (status: RefundState["status"], processorStatus: RefundState["processorStatus"], processorStatusAtMs: number | null = null): RefundState => ({ status, processorStatus, processorStatusAtMs });

describe("refundStep", () => {
  it("books, releases and reverses on the moves forward", () => {
    expect(refundStep(state("pending", "pending"), { status: "succeeded", atMs: 1 })).toEqual({ kind: "move", to: "succeeded", effect: "complete" });
    expect(refundStep(state("pending", null), { status: "succeeded", atMs: null })).toEqual({ kind: "move", to: "succeeded", effect: "complete" });
    expect(refundStep(state("pending", "requires_action"), { status: "failed", atMs: 1 })).toEqual({ kind: "move", to: "failed", effect: "release" });
    expect(refundStep(state("pending", "pending"), { status: "canceled", atMs: 1 })).toEqual({ kind: "move", to: "failed", effect: "release" });
    expect(refundStep(state("succeeded", "succeeded"), { status: "failed", atMs: 1 })).toEqual({ kind: "move", to: "failed", effect: "reverse" });
    // A row from before migration 0472 (no processor status): succeeded, and still reversed when it fails.
    expect(refundStep(state("succeeded", null), { status: "failed", atMs: 1 })).toEqual({ kind: "move", to: "failed", effect: "reverse" });
  });

  it("never moves back, whatever the report's time: a late older event is stale", () => {
    expect(refundStep(state("failed", "failed", 1_000), { status: "succeeded", atMs: 5_000 })).toEqual({ kind: "stale" });
    expect(refundStep(state("failed", "failed"), { status: "pending", atMs: 5_000 })).toEqual({ kind: "stale" });
    expect(refundStep(state("succeeded", "succeeded"), { status: "pending", atMs: null })).toEqual({ kind: "stale" });
    expect(refundStep(state("succeeded", "succeeded"), { status: "requires_action", atMs: 9_000 })).toEqual({ kind: "stale" });
    // Failed and canceled are both final: the first one stays.
    expect(refundStep(state("failed", "failed"), { status: "canceled", atMs: 9_000 })).toEqual({ kind: "stale" });
    // Ours failed without a processor status (refused, or never reached it): nothing revives it.
    expect(refundStep(state("failed", null), { status: "succeeded", atMs: 1 })).toEqual({ kind: "stale" });
  });

  it("ours failed by our inference (never_reached_processor), not the processor's word: a later report of it stands as pending", () => {
    const failedHere = { ...state("failed", null), failedHere: true };
    // Booked if it fits into what is left of the payment (refund-repo.ts decides; else an operator's issue).
    expect(refundStep(failedHere, { status: "succeeded", atMs: 1 })).toEqual({ kind: "move", to: "succeeded", effect: "complete" });
    expect(refundStep(failedHere, { status: "failed", atMs: 1 })).toEqual({ kind: "move", to: "failed", effect: "none" });
    expect(refundStep({ ...state("failed", "pending", 5), failedHere: true }, { status: "requires_action", atMs: 1 })).toEqual({ kind: "stale" });
  });

  it("the same status again is nothing new; a first processor status of the same standing is recorded", () => {
    expect(refundStep(state("succeeded", "succeeded"), { status: "succeeded", atMs: 1 })).toEqual({ kind: "same" });
    expect(refundStep(state("pending", null), { status: "pending", atMs: null })).toEqual({ kind: "move", to: "pending", effect: "none" });
    expect(refundStep(state("succeeded", null), { status: "succeeded", atMs: 1 })).toEqual({ kind: "move", to: "succeeded", effect: "none" });
  });

  it("pending <-> requires_action by the event's time; an answer without a time does not move it", () => {
    expect(refundStep(state("pending", "pending", 1_000), { status: "requires_action", atMs: 2_000 })).toEqual({ kind: "move", to: "pending", effect: "none" });
    expect(refundStep(state("pending", "requires_action", 2_000), { status: "pending", atMs: 1_000 })).toEqual({ kind: "stale" });
    expect(refundStep(state("pending", "requires_action", 2_000), { status: "pending", atMs: null })).toEqual({ kind: "stale" });
    expect(refundStep(state("pending", "pending", null), { status: "requires_action", atMs: 2_000 })).toEqual({ kind: "move", to: "pending", effect: "none" });
  });
});

describe("reports of the processor's refund", () => {
  it("only Stripe's statuses; a failure code from its failure_reason, else processor_<status>", () => {
    expect(processorRefundStatus("bounced")).toBeUndefined();
    expect(processorRefundStatus(null)).toBeUndefined();
    expect(reportOf({ id: "re_1", status: "bounced" }, 1)).toBeUndefined();
    expect(reportOf({ id: "re_1", status: "failed", failureReason: "lost_or_stolen_card" }, 7)).toEqual({ status: "failed", atMs: 7, processorRefundId: "re_1", failureCode: "lost_or_stolen_card" });
    expect(reportOf({ id: "re_1", status: "canceled", failureReason: null }, null)).toMatchObject({ failureCode: "processor_canceled" });
    expect(reportOf({ id: "re_1", status: "succeeded", failureReason: "ignored" }, null)).toMatchObject({ failureCode: null });
  });
});

describe("the user is told of a refund that failed", () => {
  it("refund_failed and refund_reversed are notices (invoice payments' ones too), with the refund's amount", () => {
    const base = { intentId: randomUUID(), userId: randomUUID(), amount: 10_000, currency: "usd", reference: `invoice:${randomUUID()}`, refundedAmount: 4_000, failureCode: "expired_or_canceled_card", ts: Date.now() };
    const reversed = fromPaymentEvent({ ...base, eventId: "refund:x:reversed", type: "payment.refund_reversed" });
    expect(reversed).toMatchObject({ kind: "payment.refund_reversed", subject: expect.stringMatching(/^Refund reversed: /) });
    expect(reversed?.text).toContain("expired_or_canceled_card");
    expect(fromPaymentEvent({ ...base, eventId: "refund:x:failed", type: "payment.refund_failed" })).toMatchObject({ subject: expect.stringMatching(/^Refund failed: /) });
    expect(reversed?.subject).toBe(fromPaymentEvent({ ...base, eventId: "refund:x", type: "payment.refunded" })?.subject.replace("Refund issued", "Refund reversed"));
  });
});

describe("mismatchOf", () => {
  const ours = { amount: 3_000n, currency: "usd" };
  it("matches only the same amount in the same currency, exactly", () => {
    expect(mismatchOf(ours, { amount: 3_000n, currency: "usd" })).toBeUndefined();
    expect(mismatchOf(ours, { amount: 2_500n, currency: "usd" })).toBe("amount_mismatch");
    // An amount that is none (the adapter's -1: a fraction, a text) is another amount.
    expect(mismatchOf(ours, { amount: -1n, currency: "usd" })).toBe("amount_mismatch");
    expect(mismatchOf(ours, { amount: 3_000n, currency: "eur" })).toBe("currency_mismatch");
    expect(mismatchOf(ours, { amount: 3_000n, currency: "USD" })).toBe("currency_mismatch");
    expect(mismatchOf(ours, { amount: 3_000n, currency: "" })).toBe("currency_mismatch");
    // Both differ: the currency is named (an amount in another currency is no amount of ours).
    expect(mismatchOf(ours, { amount: 1n, currency: "jpy" })).toBe("currency_mismatch");
  });
});
