/**
 * A refund's status as the processor reports it (Stripe's Refund object: pending, requires_action,
 * succeeded, failed, canceled), and how our record follows it, decided without I/O.
 *
 * The processor's states only move forward: pending / requires_action -> succeeded -> failed, or
 * pending / requires_action -> failed / canceled (a refund that succeeded can still fail later, e.g.
 * the card was closed: the money comes back to us). Our row keeps what the refund holds against the
 * payment: `pending` (held, nothing booked), `succeeded` (booked: journal, refunded total,
 * `payment.refunded`), `failed` (nothing held; a succeeded one that failed is reversed). Events arrive
 * late, twice and out of order, so a report is applied only when it moves the refund forward in that
 * order; between pending and requires_action (the one pair that goes both ways) the event's `created`
 * time decides, and an answer without one (the create call, a list lookup) does not move it back.
 */

export const PROCESSOR_REFUND_STATUSES = ["pending", "requires_action", "succeeded", "failed", "canceled"] as const;
export type ProcessorRefundStatus = (typeof PROCESSOR_REFUND_STATUSES)[number];
export type RefundStatus = "pending" | "succeeded" | "failed";

const RANK: Record<ProcessorRefundStatus, number> = { pending: 0, requires_action: 0, succeeded: 1, failed: 2, canceled: 2 };
const OURS: Record<ProcessorRefundStatus, RefundStatus> = { pending: "pending", requires_action: "pending", succeeded: "succeeded", failed: "failed", canceled: "failed" };
const RANK_OF_OURS: Record<RefundStatus, number> = { pending: 0, succeeded: 1, failed: 2 };

/** The processor's refund status, or undefined when it is none of Stripe's (a report that is not applied). */
export function processorRefundStatus(s: string | null | undefined): ProcessorRefundStatus | undefined {
  return (PROCESSOR_REFUND_STATUSES as readonly string[]).includes(s ?? "") ? (s as ProcessorRefundStatus) : undefined;
}

/** Why a refund failed: the processor's `failure_reason` when it gave one, else `processor_<status>`. */
export function refundFailureCode(status: ProcessorRefundStatus, failureReason: string | null | undefined): string {
  return failureReason || `processor_${status}`;
}

export interface RefundState {
  status: RefundStatus;
  /** The processor's status last applied (null: none recorded, e.g. a refund made before migration 0472). */
  processorStatus: ProcessorRefundStatus | null;
  /** The `created` time of the event that reported it (null: none, or an answer without a time). */
  processorStatusAtMs: number | null;
  /**
   * Failed by our inference, not the processor's word (never_reached_processor: its list did not have
   * it): a later report of it from the processor is newer than that failure, so it stands as pending.
   */
  failedHere?: boolean;
}

/** One report of the processor's refund: a webhook event (with its `created` time) or an API answer (atMs null). */
export interface RefundReport {
  status: ProcessorRefundStatus;
  atMs: number | null;
}

/**
 * `stale`: older than what is recorded (never applied); `same`: nothing new; `move`: record it, and
 * `effect` says what the money does: `complete` books the refund, `release` frees a pending one's
 * amount, `reverse` undoes a booked one (it failed after succeeding), `none` only records the status.
 */
export type RefundStep = { kind: "stale" } | { kind: "same" } | { kind: "move"; to: RefundStatus; effect: "none" | "complete" | "release" | "reverse" };

export function refundStep(cur: RefundState, report: RefundReport): RefundStep {
  const from = cur.failedHere ? 0 : cur.processorStatus === null ? RANK_OF_OURS[cur.status] : RANK[cur.processorStatus];
  const to = RANK[report.status];
  if (to < from) return { kind: "stale" };
  if (to === from) {
    if (report.status === cur.processorStatus) return { kind: "same" };
    // Only recorded: a first processor status for a row that had none (the same standing as ours)...
    if (cur.processorStatus === null) return { kind: "move", to: cur.status, effect: "none" };
    // ...or pending <-> requires_action, by the event's time. Failed and canceled are both final: the first stays.
    const newer = report.atMs !== null && (cur.processorStatusAtMs === null || report.atMs >= cur.processorStatusAtMs);
    return to === 0 && newer ? { kind: "move", to: "pending", effect: "none" } : { kind: "stale" };
  }
  const ours = OURS[report.status];
  const effect = ours === "succeeded" ? "complete" : ours === "pending" ? "none" : cur.status === "succeeded" ? "reverse" : cur.status === "pending" ? "release" : "none";
  return { kind: "move", to: ours, effect };
}

/** A report of the processor's refund: its status (and the event's time), its id, why it failed. */
export interface ProcessorRefundReport extends RefundReport {
  processorRefundId: string;
  failureCode: string | null;
}

/** The report of a processor's refund object, or undefined when its status is none of Stripe's. */
export function reportOf(remote: { id: string; status: string; failureReason?: string | null }, atMs: number | null): ProcessorRefundReport | undefined {
  const status = processorRefundStatus(remote.status);
  if (!status) return undefined;
  const failed = status === "failed" || status === "canceled";
  return { status, atMs, processorRefundId: remote.id, failureCode: failed ? refundFailureCode(status, remote.failureReason) : null };
}

/** How the processor's record of our refund differs from it: `currency_mismatch` first, then `amount_mismatch`. */
export type RefundMismatch = "amount_mismatch" | "currency_mismatch";

/**
 * Whether the processor's refund is of our refund's amount and currency (minor units; Stripe's
 * lowercase currency codes, compared exactly). A report of another one is never applied: its status
 * would book, release or reverse an amount that is not the one that moved (undefined: they match).
 */
export function mismatchOf(ours: { amount: bigint; currency: string }, theirs: { amount: bigint; currency: string }): RefundMismatch | undefined {
  if (theirs.currency !== ours.currency) return "currency_mismatch";
  if (theirs.amount !== ours.amount) return "amount_mismatch";
  return undefined;
}
