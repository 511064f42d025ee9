/**
 * revenue-analytics rules, no I/O: event validation and the SaaS metrics from MRR snapshots.
 * Money stays bigint minor units; ratios (churn) are plain numbers rounded to 6 decimals.
 *
 * Definitions (per currency; a customer is a user whose subscriptions' MRR sums to > 0):
 *   MRR   = sum of each subscription's latest MRR at the instant
 *   ARR   = 12 x MRR
 *   ARPU  = MRR / paying customers, rounded half away from zero
 *   churn = customers paying at the period start and no longer paying at its end / customers at the start
 *   LTV   = ARPU / churn (null while churn is 0: no churn observed means no finite estimate)
 *   net revenue = payments succeeded - refunds in the period (cash, not MRR); a refund that failed after
 *                 it succeeded (payment.refund_reversed) counts back in the period it was reversed in;
 *                 one booked again at the processor's amount (payment.refund_adjusted) moves refunds by
 *                 the difference in the period it was adjusted in
 */
import type { Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { mulDivRound } from "../../business/money";
import { type BillingEventMsg, isRefundEvent, type PaymentEventMsg } from "../../business/events";
import { BillingEventSchema, PaymentEventSchema } from "../../trading/infra/topicSchemas";

// The topics' schemas (consumeBatches already set aside messages that break them; checked again here
// so the functions stand alone).
export type MrrChange = Pick<BillingEventMsg, "eventId" | "subscriptionId" | "userId" | "planId" | "status" | "currency" | "mrr" | "ts">;
export interface PaymentFact {
  eventId: string;
  type: PaymentEventMsg["type"];
  intentId: string;
  userId: string;
  currency: string;
  amount: number;
  /** payment.refund_adjusted only: the refund's amount as announced before (previousRefundedAmount). */
  previousAmount?: number;
  ts: number;
}

/** A billing event as an MRR snapshot, or null when it is not one (malformed: logged and skipped by the caller). */
export function mrrChange(raw: unknown): MrrChange | null {
  if (!Value.Check(BillingEventSchema, raw)) return null;
  const e: Static<typeof BillingEventSchema> = raw;
  return { eventId: e.eventId, subscriptionId: e.subscriptionId, userId: e.userId, planId: e.planId, status: e.status, currency: e.currency, mrr: e.mrr, ts: e.ts };
}

/**
 * A payment event as a cash fact (a refund counts its refunded amount; an adjustment keeps the amount
 * it replaces too, since the difference is what moved), or null when malformed.
 */
export function paymentFact(raw: unknown): PaymentFact | null {
  if (!Value.Check(PaymentEventSchema, raw)) return null;
  const e: Static<typeof PaymentEventSchema> = raw;
  // The refund events count the refund's amount (`amount` stays the payment's).
  const aboutRefund = isRefundEvent(e.type);
  if (aboutRefund && e.refundedAmount === undefined) return null;
  const adjusted = e.type === "payment.refund_adjusted";
  if (adjusted && e.previousRefundedAmount === undefined) return null;
  const amount = aboutRefund ? e.refundedAmount! : e.amount;
  return { eventId: e.eventId, type: e.type, intentId: e.intentId, userId: e.userId, currency: e.currency, amount, ...(adjusted ? { previousAmount: e.previousRefundedAmount! } : {}), ts: e.ts };
}

/** MRR per customer (user) at an instant, in one currency. */
export type CustomerMrr = Map<string, bigint>;

export interface RevenueMetrics {
  currency: string;
  mrr: bigint;
  arr: bigint;
  payingCustomers: number;
  arpu: bigint;
  customersAtStart: number;
  churnedCustomers: number;
  newCustomers: number;
  churnRate: number;
  ltv: bigint | null;
  collected: bigint;
  refunded: bigint;
  netRevenue: bigint;
}

const paying = (m: CustomerMrr) => new Set([...m].filter(([, v]) => v > 0n).map(([u]) => u));

export function revenueMetrics(currency: string, atStart: CustomerMrr, atEnd: CustomerMrr, cash: { collected: bigint; refunded: bigint }): RevenueMetrics {
  const start = paying(atStart);
  const end = paying(atEnd);
  const mrr = [...atEnd.values()].reduce((a, b) => a + b, 0n);
  const churned = [...start].filter((u) => !end.has(u)).length;
  const arpu = end.size ? mulDivRound(mrr, 1n, BigInt(end.size)) : 0n;
  return {
    currency,
    mrr,
    arr: mrr * 12n,
    payingCustomers: end.size,
    arpu,
    customersAtStart: start.size,
    churnedCustomers: churned,
    newCustomers: [...end].filter((u) => !start.has(u)).length,
    churnRate: start.size ? Math.round((churned / start.size) * 1e6) / 1e6 : 0,
    // ARPU / (churned / start) = ARPU x start / churned, exact in integers.
    ltv: churned ? mulDivRound(arpu, BigInt(start.size), BigInt(churned)) : null,
    collected: cash.collected,
    refunded: cash.refunded,
    netRevenue: cash.collected - cash.refunded,
  };
}
