/**
 * Payment intents: the platform's record of one attempt to collect an amount from a customer.
 *
 * Lifecycle: created (our row is committed, the processor has not answered yet) -> processing
 * (the processor accepted it and will confirm by webhook) -> succeeded | failed | canceled.
 * The intent id doubles as the processor's idempotency key, so re-sending after a crash can never
 * charge twice; an intent left in `created` is settled by reconciliation (domain/reconcile.ts).
 */
import { createHash } from "node:crypto";
import type { Currency } from "../../../business/money";
import { NEVER_REACHED } from "./refund-settlement";

export const INTENT_STATUSES = ["created", "processing", "succeeded", "failed", "canceled"] as const;
export type IntentStatus = (typeof INTENT_STATUSES)[number];

const NEXT: Record<IntentStatus, readonly IntentStatus[]> = {
  created: ["processing", "succeeded", "failed", "canceled"],
  processing: ["succeeded", "failed", "canceled"],
  succeeded: [],
  failed: [],
  canceled: [],
};

export function canTransition(from: IntentStatus, to: IntentStatus): boolean {
  return NEXT[from].includes(to);
}

/**
 * canTransition, and an intent failed by our inference (NEVER_REACHED, never_reached_processor:
 * reconciliation found no record of it at the processor once no create request of it could be on its
 * way, domain/reconcile.ts), not by the processor's word, moving on by a later report of the processor
 * (the answer of a create on its way after all, its webhook, a later reconciliation pass): money the
 * processor took is booked (and announced `payment.succeeded`), never left unbooked.
 */
export function canSettle(cur: { status: IntentStatus; failureCode?: string | null }, to: IntentStatus): boolean {
  return canTransition(cur.status, to) || (cur.status === "failed" && cur.failureCode === NEVER_REACHED && to !== "failed");
}

/**
 * The failure code of a payment the processor cancelled (its dashboard, an authentication that expired)
 * whose cancel carries none: announced `payment.failed` with it (repo.ts settle).
 */
export const CANCELED_AT_PROCESSOR = "canceled_at_processor";

export function isTerminal(s: IntentStatus): boolean {
  return NEXT[s].length === 0;
}

/**
 * Our status from the processor's PaymentIntent status (Stripe's vocabulary). A failed
 * confirmation goes back to `requires_payment_method` there; for us that attempt has failed.
 */
export function statusFromProcessor(status: string): IntentStatus {
  const ours = intentStatusOf(status);
  if (!ours) throw new Error(`unknown processor payment intent status ${JSON.stringify(status)}`);
  return ours;
}

/** statusFromProcessor, or undefined when the status is none of Stripe's (a signed event may carry anything). */
export function intentStatusOf(status: string): IntentStatus | undefined {
  switch (status) {
    case "succeeded":
      return "succeeded";
    case "canceled":
      return "canceled";
    case "requires_payment_method":
      return "failed";
    case "processing":
    case "requires_action":
    case "requires_confirmation":
    case "requires_capture":
      return "processing";
    default:
      return undefined;
  }
}

/**
 * Who asked for a charge: a user through the gateway (`client`), or a platform service over the
 * internal route (`internal`: billing-service's invoice charges). Each has its own idempotency-key
 * namespace, so a client cannot take a key a service is going to use.
 */
export type IntentOrigin = "client" | "internal";

export interface IntentRequest {
  amount: bigint;
  currency: Currency;
  /** The processor's token for a saved card (`pm_...`): no card data ever reaches us. */
  paymentMethod: string;
  description: string | null;
  /** What the payment is for (e.g. `invoice:<id>`), echoed in events. */
  reference: string | null;
}

/** Hash of the request a client bound to an idempotency key: same key + other body -> 409. */
export function requestHash(userId: string, r: IntentRequest): string {
  const canonical = JSON.stringify([userId, r.amount.toString(), r.currency, r.paymentMethod, r.description, r.reference]);
  return createHash("sha256").update(canonical).digest("hex");
}

/**
 * A refund request as its Idempotency-Key is compared on a retry: the amount asked (null: what is left of
 * the payment) and the reason.
 */
export function refundRequestHash(amount: bigint | undefined, reason: string | null): string {
  return createHash("sha256").update(JSON.stringify([amount === undefined ? null : amount.toString(), reason])).digest("hex");
}

/**
 * Whether a retry under a refund's key is the request that made it (answered that refund; else a 409).
 * `{}` (what was left) retried with the amount it came to is the same request. Before, only an amount given
 * was compared, so `{}` under the key of a refund of 1,000 was answered that refund, as if the rest had gone
 * back, and another reason was taken (session 64b). A refund recorded before migration 0517 has no hash
 * (`stored` null): compared by an amount given, as then.
 */
export function sameRefundRequest(stored: string | null, refunded: bigint, amount: bigint | undefined, reason: string | null): boolean {
  if (stored === null) return amount === undefined || amount === refunded;
  return stored === refundRequestHash(amount, reason) || (amount === refunded && stored === refundRequestHash(undefined, reason));
}

export type RefundCheck = { ok: true } | { ok: false; code: "INTENT_NOT_SUCCEEDED" | "REFUND_EXCEEDS_PAYMENT"; message: string };

/**
 * `refunded`: what the intent's refunds already hold, the pending ones included (their money may be
 * on its way out: counting only the succeeded ones let two refunds at once both fit).
 */
export function checkRefund(intent: { status: IntentStatus; amount: bigint; refunded: bigint }, amount: bigint): RefundCheck {
  if (intent.status !== "succeeded") return { ok: false, code: "INTENT_NOT_SUCCEEDED", message: `payment is ${intent.status}; only succeeded payments can be refunded` };
  const left = intent.amount - intent.refunded;
  if (amount > left) return { ok: false, code: "REFUND_EXCEEDS_PAYMENT", message: `refund of ${amount} exceeds the refundable ${left}` };
  return { ok: true };
}
