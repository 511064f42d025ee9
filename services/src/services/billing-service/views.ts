/**
 * billing-service's answers: plans, subscriptions and invoices as the HTTP API shows them (amounts
 * as integers in minor units).
 */
import { toJson } from "../../business/money";
import { type Plan, shownStatus } from "./domain/subscriptions";
import type { InvoiceRow, SubscriptionRow } from "./repo";

export function planView(p: Plan) {
  return {
    id: p.id,
    name: p.name,
    currency: p.currency,
    amount: toJson(p.amount),
    interval: p.interval,
    trialDays: p.trialDays,
    usage: p.usage && { metric: p.usage.metric, included: toJson(p.usage.included), blockSize: toJson(p.usage.blockSize), blockAmount: toJson(p.usage.blockAmount) },
  };
}

export function subscriptionView(r: SubscriptionRow) {
  return {
    id: r.subscription_id,
    userId: r.user_id,
    planId: r.plan_id,
    /** `paused` while billing is paused (pausedAt), else the stored status (domain shownStatus). */
    status: shownStatus({ status: r.status, pausedAt: r.paused_at }),
    currentPeriodStart: r.period_start.toISOString(),
    currentPeriodEnd: r.period_end.toISOString(),
    trialEnd: r.trial_end?.toISOString() ?? null,
    cancelAtPeriodEnd: r.cancel_at_period_end,
    creditBalance: toJson(BigInt(r.credit_balance)),
    canceledAt: r.canceled_at?.toISOString() ?? null,
    /**
     * Billing paused since (its owner's account disabled at its period's end, or an unpaid subscription
     * paid after its period ended): not renewed until the account is enabled again (the next cycle).
     */
    pausedAt: r.paused_at?.toISOString() ?? null,
    paymentMethod: r.payment_method,
  };
}

export function invoiceView(r: InvoiceRow, lines: { kind: string; description: string; quantity: string; amount: string; period_start: Date; period_end: Date }[]) {
  return {
    id: r.invoice_id,
    subscriptionId: r.subscription_id,
    status: r.status,
    currency: r.currency,
    subtotal: toJson(BigInt(r.subtotal)),
    creditApplied: toJson(BigInt(r.credit_applied)),
    amountDue: toJson(BigInt(r.amount_due)),
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at?.toISOString() ?? null,
    paidAt: r.paid_at?.toISOString() ?? null,
    /**
     * Its charge held for an operator's review since (payment-service got another amount or currency
     * from the card processor): not charged again until the payment's outcome; null when not held.
     */
    chargeHeldAt: r.charge_held_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
    lines: lines.map((l) => ({ kind: l.kind, description: l.description, quantity: toJson(BigInt(l.quantity)), amount: toJson(BigInt(l.amount)), periodStart: l.period_start.toISOString(), periodEnd: l.period_end.toISOString() })),
  };
}
