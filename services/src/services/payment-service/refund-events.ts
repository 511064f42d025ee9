/**
 * The processor's refund events: Stripe sends `refund.created`, `refund.updated` and `refund.failed`
 * (and, for some payment methods, the older `charge.refund.updated`), each carrying the Refund object
 * with its status. Before, every event not about a PaymentIntent was ignored, so a refund that the
 * processor reported pending and then failed (or that failed after succeeding: a closed card) stayed
 * pending or succeeded here: its amount held or counted refunded, money the platform still had.
 *
 * Our refund is found by the refund id we send as metadata (else by the processor's refund id); its
 * amount and payment must be ours. The report is applied only when it moves the refund forward
 * (domain/refund-status.ts), so a late older event is `stale`; a replayed event id is a `duplicate`
 * before this (payments.ts applyWebhook, pay_webhook_events). An event for a refund we do not know
 * (made on the processor's dashboard) is `ignored` and logged: acknowledged, never a 5xx.
 */
import type { Logger } from "pino";
import { reportOf } from "./domain/refund-status";
import type { ProcessorEvent, ProcessorRefund } from "./processor";
import type { RefundRepo } from "./refund-repo";
import type { PaymentRepo } from "./repo";

/** The event types that carry a refund's status. */
export const REFUND_EVENT_TYPES: ReadonlySet<string> = new Set(["refund.created", "refund.updated", "refund.failed", "charge.refund.updated"]);

/** `moved`: the refund's money moved (booked, released or reversed): an event is waiting in the outbox. */
export async function applyRefundEvent(deps: { refunds: RefundRepo; repo: PaymentRepo; log: Logger }, ev: ProcessorEvent, remote: ProcessorRefund): Promise<{ outcome: "applied" | "ignored" | "stale"; moved: boolean }> {
  const { refunds, repo, log } = deps;
  const fields = { eventId: ev.id, type: ev.type, processorRefundId: remote.id };
  const ignored = { outcome: "ignored" as const, moved: false };
  const report = reportOf(remote, ev.createdMs);
  if (!report) {
    log.warn({ ...fields, status: remote.status }, "refund webhook with a status the processor does not define ignored");
    return ignored;
  }
  const local = await refunds.find({ refundId: remote.refundId, processorRefundId: remote.id });
  if (!local) {
    log.warn(fields, "webhook for an unknown refund ignored");
    return ignored;
  }
  const intent = await repo.byId(local.intent_id);
  const samePayment = !remote.paymentIntent || !intent?.processor_intent_id || remote.paymentIntent === intent.processor_intent_id;
  if (!intent || BigInt(local.amount) !== remote.amount || intent.currency !== remote.currency || !samePayment) {
    log.error({ ...fields, refundId: local.refund_id }, "refund webhook's amount, currency or payment differs from our refund; not applied");
    return ignored;
  }
  const { step } = await refunds.apply(local.refund_id, report);
  if (step.kind === "stale") {
    log.info({ ...fields, refundId: local.refund_id, status: report.status }, "refund webhook older than the refund's recorded status: not applied");
    return { outcome: "stale", moved: false };
  }
  if (step.kind === "move" && step.effect !== "none") log.info({ ...fields, refundId: local.refund_id, to: step.to, effect: step.effect }, "refund status from the processor applied");
  return { outcome: "applied", moved: step.kind === "move" && step.effect !== "none" };
}
