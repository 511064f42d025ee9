/**
 * Settling a refund left `pending` (the service crashed after reserving it, or the processor's answer
 * was lost to a timeout): what the processor's own record of it says, decided without I/O.
 */

/** The processor's refund found by our refund id (its metadata), as Stripe's Refund object has it. */
export interface RemoteRefund {
  id: string;
  /** Stripe: pending, requires_action, succeeded, failed, canceled. */
  status: string;
  /** Stripe's `failure_reason` of a failed refund (expired_or_canceled_card, lost_or_stolen_card, unknown). */
  failureReason?: string | null;
}

export type RefundSettlement =
  | { kind: "succeeded"; processorRefundId: string }
  | { kind: "failed"; processorRefundId: string; failureCode: string }
  | { kind: "never_reached_processor" }
  /** The processor has it and has not finished it, or a request for it may still reach the processor. */
  | { kind: "wait"; reason: "processor_pending" | "may_be_in_flight" };

/**
 * The longest a refund request sent at `sent_at` can still reach the processor and be acted on:
 * every attempt the SDK makes (`maxNetworkRetries` + 1, each cut at `timeoutMs`), the SDK's sleeps
 * between them (at most `maxRetryDelayMs` each), and `processorGraceMs` for a request the processor
 * received just before our client gave up and still finishes.
 */
export function inFlightBoundMs(p: { timeoutMs: number; maxNetworkRetries: number; maxRetryDelayMs: number; processorGraceMs: number }): number {
  return (p.maxNetworkRetries + 1) * p.timeoutMs + p.maxNetworkRetries * p.maxRetryDelayMs + p.processorGraceMs;
}

/**
 * `remote` is undefined when the processor lists no refund of the payment carrying our refund id.
 * Such a refund is failed (its amount released, so the payment can be refunded again) only when
 * `sinceSentMs` exceeds `inFlightMs`: the processor cannot act on a request it never received, and
 * after that bound no request with this refund's idempotency key is still on its way (the first call
 * and the SDK's retries have all ended, and a retry of the key by a client moves `sent_at`, under the
 * payment's lock, before it sends). The list is read after that bound and is not eventually
 * consistent (unlike the processor's search), so an absent refund there is one it never made.
 */
export function settleRefund(remote: RemoteRefund | undefined, sinceSentMs: number, inFlightMs: number): RefundSettlement {
  if (!remote) return sinceSentMs > inFlightMs ? { kind: "never_reached_processor" } : { kind: "wait", reason: "may_be_in_flight" };
  if (remote.status === "succeeded") return { kind: "succeeded", processorRefundId: remote.id };
  if (remote.status === "failed" || remote.status === "canceled") return { kind: "failed", processorRefundId: remote.id, failureCode: `processor_${remote.status}` };
  return { kind: "wait", reason: "processor_pending" };
}

/** The failure code of a refund failed because the processor never received it. */
export const NEVER_REACHED = "never_reached_processor";
