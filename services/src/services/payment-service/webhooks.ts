/**
 * payment-service's processor webhooks, once verified (routes.ts): a PaymentIntent's event settles our
 * intent (repo.ts settle), a Refund's moves our refund (refund-events.ts). Each event id is recorded
 * (pay_webhook_events) in the transaction that applies its change.
 */
import type { PoolClient } from "pg";
import type { Logger } from "pino";
import { intentStatusOf } from "./domain/intents";
import type { ProcessorEvent } from "./processor";
import { applyRefundEvent, REFUND_EVENT_TYPES } from "./refund-events";
import type { RefundIssues } from "./refund-issues";
import type { RefundRepo } from "./refund-repo";
import type { PaymentRepo } from "./repo";

export type WebhookOutcome = "applied" | "duplicate" | "ignored" | "stale" | "exceeds_payment" | "mismatch";
type Deps = { repo: PaymentRepo; refunds: RefundRepo; issues: RefundIssues; log: Logger };

/**
 * Applies a verified processor event once (replays by event id are acknowledged, not applied). A
 * signed event is acknowledged whatever it carries (never a 5xx, which the processor retries for
 * days): one with no id or type, or that is not as our payment is (amount, currency, status, the
 * processor id of another payment), is `ignored` and logged (ids only). The event id is recorded in
 * the transaction that applies its change (pay_webhook_events): both commit or neither does. Before,
 * the id was committed first and forgotten when the apply threw: a crash in between (or a failed
 * forget) left the id recorded and the change never made, every retry of the processor a `duplicate`.
 */
export async function applyWebhook(deps: Deps, ev: ProcessorEvent, published: () => void): Promise<WebhookOutcome> {
  const { repo, log } = deps;
  if (!ev.id || !ev.type) {
    log.warn({ eventId: ev.id || null, type: ev.type || null }, "webhook without an event id or type ignored");
    return "ignored";
  }
  if (await repo.webhookEventSeen(ev.id)) return "duplicate";
  const { outcome, moved } = await repo.transaction(async (c) => {
    // (a delivery of the same id at the same time waits here for this one's commit, then is a replay)
    if (!(await repo.markWebhookEvent(ev.id, ev.type, c))) return { outcome: "duplicate" as const, moved: false };
    return applyIn(deps, c, ev);
  });
  if (moved) published();
  return outcome;
}

async function applyIn(deps: Deps, c: PoolClient, ev: ProcessorEvent): Promise<{ outcome: Exclude<WebhookOutcome, "duplicate">; moved: boolean }> {
  const { repo, log } = deps;
  if (ev.refund && REFUND_EVENT_TYPES.has(ev.type)) return applyRefundEvent(deps, ev, ev.refund, c);
  const ignored = { outcome: "ignored" as const, moved: false };
  const remote = ev.intent;
  if (!remote || !ev.type.startsWith("payment_intent.")) return ignored;
  const intentId = remote.intentId ?? (await repo.byProcessorId(remote.id, c))?.intent_id;
  const local = intentId ? await repo.byId(intentId, c) : undefined;
  if (!local) {
    log.warn({ eventId: ev.id, processorIntentId: remote.id }, "webhook for an unknown payment intent ignored");
    return ignored;
  }
  // Our intent id on another PaymentIntent than the one we recorded (or one another payment of ours has): not ours.
  const owner = local.processor_intent_id === remote.id ? local : await repo.byProcessorId(remote.id, c);
  const to = intentStatusOf(remote.status);
  // Canceled there, it moved no money whatever its amount: applied (since session 54), so an operator's cancel at the
  // processor of a charge held for a mismatch ends the hold (payment.failed; its issue resolved), as reconciliation does.
  const differs = BigInt(local.amount) !== remote.amount || local.currency !== remote.currency;
  if ((differs && to !== "canceled") || !to || (owner && owner.intent_id !== local.intent_id) || (local.processor_intent_id && local.processor_intent_id !== remote.id)) {
    log.error({ eventId: ev.id, intentId: local.intent_id }, "webhook amount, currency, status or processor id differs from our intent; not applied");
    return ignored;
  }
  const { changed } = await repo.settle(local.intent_id, to, { id: remote.id, fee: remote.fee, failureCode: remote.failureCode, failureMessage: remote.failureMessage }, { c });
  if (differs && changed) await deps.issues.resolve(c, "charge_mismatch", { intentId: local.intent_id, refundId: null, processorRefundId: null });
  return { outcome: "applied", moved: changed };
}
