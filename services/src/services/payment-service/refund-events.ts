/**
 * The processor's refund events: Stripe sends `refund.created`, `refund.updated` and `refund.failed`
 * (and, for some payment methods, the older `charge.refund.updated`), each carrying the Refund object
 * with its status. Before, every event not about a PaymentIntent was ignored, so a refund that the
 * processor reported pending and then failed (or that failed after succeeding: a closed card) stayed
 * pending or succeeded here: its amount held or counted refunded, money the platform still had.
 *
 * Our refund is found by the refund id we send as metadata (else by the processor's refund id); its
 * payment must be ours (else `ignored`), and its amount and currency too: one of another is `mismatch`,
 * not applied, recorded once for an operator (refund-repo.ts matchesProcessor, as every report is). The report is applied only when it moves the refund forward
 * (domain/refund-status.ts), so a late older event is `stale`; a replayed event id is a `duplicate`
 * before this (payments.ts applyWebhook, pay_webhook_events, recorded in the same transaction). A refund we do not know, of a payment we
 * do know, was made at the processor (its dashboard): the money went back all the same, so it is
 * recorded (refund-repo.ts recordForeign: the refund row, and once it succeeds its journal, the
 * payment's refunded total and `payment.refunded`), once whatever number of its events arrive; one
 * failed there already is recorded failed (nothing moved), so its older success arriving late is
 * `stale`. One in another currency than its payment, or of no amount a refund can have, is `mismatch`:
 * not booked, recorded once for an operator (`currency_mismatch`, else `amount_mismatch`; refundId
 * null). One of a payment we do not know, or not as ours is (an id of another refund or payment), is
 * `ignored` and logged: acknowledged, never a 5xx. A refund the
 * processor reports succeeded that does not fit into what is left of the payment here (ours, or one
 * made there, racing another; or our record diverging from the processor's) is not booked:
 * `exceeds_payment`, recorded once for an operator (refund-issues.ts, GET /refund-issues), 200.
 */
import type { PoolClient } from "pg";
import type { Logger } from "pino";
import { type ProcessorRefundReport, reportOf } from "./domain/refund-status";
import type { ProcessorEvent, ProcessorRefund } from "./processor";
import type { AppliedStep, RefundRepo } from "./refund-repo";
import type { PaymentRepo } from "./repo";

/** The event types that carry a refund's status. */
export const REFUND_EVENT_TYPES: ReadonlySet<string> = new Set(["refund.created", "refund.updated", "refund.failed", "charge.refund.updated"]);

/** `moved`: the refund's money moved (booked, released or reversed): an event is waiting in the outbox. */
export type RefundEventOutcome = { outcome: "applied" | "ignored" | "stale" | "exceeds_payment" | "mismatch"; moved: boolean };
type Deps = { refunds: RefundRepo; repo: PaymentRepo; log: Logger };
type Fields = { eventId: string; type: string; processorRefundId: string };
const IGNORED: RefundEventOutcome = { outcome: "ignored", moved: false };

/** What applying a report (refund-repo.ts apply) tells the webhook's sender, and whether money moved; logged. */
function outcomeOf(log: Logger, f: Fields & { refundId: string | null }, step: AppliedStep, status: string): RefundEventOutcome {
  // (logged at error level once, when recorded: refund-issues.ts)
  if (step.kind === "exceeds_payment") return { outcome: "exceeds_payment", moved: false };
  if (step.kind === "stale") {
    log.info({ ...f, status }, "refund webhook older than the refund's recorded status: not applied");
    return { outcome: "stale", moved: false };
  }
  const moved = step.kind === "move" && step.effect !== "none";
  if (step.kind === "move" && moved) log.info({ ...f, to: step.to, effect: step.effect }, "refund status from the processor applied");
  return { outcome: "applied", moved };
}

/** In `c`, the webhook's transaction (its event id is recorded in it: payments.ts applyWebhook). */
export async function applyRefundEvent(deps: Deps, ev: ProcessorEvent, remote: ProcessorRefund, c: PoolClient): Promise<RefundEventOutcome> {
  const { refunds, repo, log } = deps;
  const fields = { eventId: ev.id, type: ev.type, processorRefundId: remote.id };
  const report = reportOf(remote, ev.createdMs);
  if (!report) {
    log.warn({ ...fields, status: remote.status }, "refund webhook with a status the processor does not define ignored");
    return IGNORED;
  }
  const local = await refunds.find({ refundId: remote.refundId, processorRefundId: remote.id }, c);
  if (!local) return recordForeign(deps, fields, remote, report, c);
  // (its payment locked first, as refund() and the reconciler take it: an issue recorded below waits for no one holding it)
  const intent = await repo.byId(local.intent_id, c, true);
  const samePayment = !remote.paymentIntent || !intent?.processor_intent_id || remote.paymentIntent === intent.processor_intent_id;
  // Found by our refund id but carrying another processor refund id (ours, or one another refund has): another refund's object.
  const holder = local.processor_refund_id ? undefined : await refunds.find({ refundId: null, processorRefundId: remote.id }, c);
  const sameRefund = local.processor_refund_id ? local.processor_refund_id === remote.id : !holder || holder.refund_id === local.refund_id;
  if (!intent || !samePayment || !sameRefund) {
    log.error({ ...fields, refundId: local.refund_id }, "refund webhook's payment or refund id differs from our refund; not applied");
    return IGNORED;
  }
  // Our refund with another amount or currency: an operator's issue (recorded and logged once), not applied.
  if (!(await refunds.matchesProcessor(local.refund_id, remote, c))) return { outcome: "mismatch", moved: false };
  const { step } = await refunds.apply(local.refund_id, report, c);
  return outcomeOf(log, { ...fields, refundId: local.refund_id }, step, report.status);
}

/** A refund the platform never created, on a payment it knows (by its processor id): recorded, see above. */
async function recordForeign(deps: Deps, fields: Fields, remote: ProcessorRefund, report: ProcessorRefundReport, c: PoolClient): Promise<RefundEventOutcome> {
  const { refunds, repo, log } = deps;
  const intent = remote.paymentIntent ? await repo.byProcessorId(remote.paymentIntent, c) : undefined;
  if (!intent) {
    log.warn({ ...fields, processorIntentId: remote.paymentIntent }, "refund webhook for a payment we do not know ignored");
    return IGNORED;
  }
  const f = { ...fields, intentId: intent.intent_id };
  // (beyond the payment: refund-repo.ts recordForeign records it for an operator, `exceeds_payment`)
  // In another currency than the payment, or of no amount a refund of it can have (none, zero, a fraction,
  // a text): nothing booked; an operator's issue (currency_mismatch, whatever its amount, else
  // amount_mismatch), recorded (and logged) once however many of its events arrive, each answered 200
  // `mismatch` (a 5xx, or `ignored` with an error logged, per delivery before).
  if (intent.currency !== remote.currency || remote.amount <= 0n) {
    await refunds.recordForeignMismatch(intent.intent_id, remote, intent.currency === remote.currency ? "amount_mismatch" : "currency_mismatch", c);
    return { outcome: "mismatch", moved: false };
  }
  const recorded = await refunds.recordForeign(intent.intent_id, { amount: remote.amount, report }, c);
  return outcomeOf(log, { ...f, refundId: recorded.refundId }, recorded.step, report.status);
}
