/**
 * Invoice totals and dunning, pure. A negative subtotal (a downgrade's proration) becomes customer
 * credit instead of a negative invoice; credit is applied to the next amounts due. A failed payment
 * is retried on a schedule; after the last retry the invoice is uncollectible and the subscription
 * unpaid (service stops), the usual card-processor dunning shape.
 */
import { sum } from "../../../business/money";
import type { InvoiceLine, SubscriptionStatus } from "./subscriptions";

/** `carried`: owing less than the processor charges (MIN_CHARGE), its amount goes on the next invoice. */
export const INVOICE_STATUSES = ["open", "paid", "void", "uncollectible", "carried"] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

/**
 * A new invoice's status: paid when nothing is left to pay, carried when what is left is less than
 * the processor charges (`minCharge`: it refuses such a charge every time, so dunning ended it
 * uncollectible and the subscription unpaid), open (to be charged) otherwise.
 */
export function newInvoiceStatus(amountDue: bigint, minCharge: bigint): InvoiceStatus {
  return amountDue === 0n ? "paid" : amountDue < minCharge ? "carried" : "open";
}

export interface InvoiceTotals {
  subtotal: bigint;
  creditApplied: bigint;
  amountDue: bigint;
  creditBalanceAfter: bigint;
}

export function invoiceTotals(lines: Pick<InvoiceLine, "amount">[], creditBalance: bigint): InvoiceTotals {
  if (creditBalance < 0n) throw new Error("credit balance cannot be negative");
  const subtotal = sum(lines.map((l) => l.amount));
  if (subtotal <= 0n) return { subtotal, creditApplied: 0n, amountDue: 0n, creditBalanceAfter: creditBalance - subtotal };
  const creditApplied = creditBalance < subtotal ? creditBalance : subtotal;
  return { subtotal, creditApplied, amountDue: subtotal - creditApplied, creditBalanceAfter: creditBalance - creditApplied };
}

export interface DunningPolicy {
  /** Days after each failed attempt before the next one; its length is the number of retries. */
  retryAfterDays: number[];
}

export const DEFAULT_DUNNING: DunningPolicy = { retryAfterDays: [1, 3, 5] };

export type DunningDecision = { action: "retry"; at: Date } | { action: "give_up" };

/** What to do after attempt number `attempts` (1 = the first charge) failed at `failedAt`. */
export function afterFailedAttempt(attempts: number, failedAt: Date, policy: DunningPolicy = DEFAULT_DUNNING): DunningDecision {
  if (attempts < 1) throw new Error("attempts starts at 1");
  const days = policy.retryAfterDays[attempts - 1];
  if (days === undefined) return { action: "give_up" };
  return { action: "retry", at: new Date(failedAt.getTime() + days * 86_400_000) };
}

/**
 * Whether payment-service's answer to a charge request refuses that charge for good, so it counts
 * as a failed attempt and dunning moves on to the next one (a new key), rather than asking for the
 * same request again next cycle. A 4xx says the request itself is wrong, and the same request gets
 * the same answer: e.g. IDEMPOTENCY_KEY_REUSED (the key is bound to another request), a validation
 * error. Retrying was the old answer to every failure, so a refused charge was retried for ever:
 * the invoice stayed open and the subscription past_due. Not refusals: the key's first request is
 * still in progress (IDEMPOTENCY_KEY_IN_USE), throttling (429), a timeout (408), and a deployment
 * with no card processor (PROCESSOR_NOT_CONFIGURED: nothing the customer did, every charge fails), and
 * a charge held for an operator (CHARGE_HELD_FOR_REVIEW: the next attempt's key would charge again).
 */
export function refusesCharge(status: number, code: string | undefined): boolean {
  if (status < 400 || status >= 500 || status === 408 || status === 429) return false;
  return code !== "IDEMPOTENCY_KEY_IN_USE" && code !== "PROCESSOR_NOT_CONFIGURED" && code !== "CHARGE_HELD_FOR_REVIEW";
}

/** The subscription's status after its invoice's payment outcome. */
export function statusAfterPayment(current: SubscriptionStatus, outcome: "paid" | "failed" | "gave_up"): SubscriptionStatus {
  if (current === "canceled") return current;
  if (outcome === "paid") return current === "trialing" ? current : "active";
  if (outcome === "gave_up") return "unpaid";
  return current === "trialing" ? current : "past_due";
}
