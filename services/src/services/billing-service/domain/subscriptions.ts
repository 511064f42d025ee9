/**
 * Plans and subscriptions, pure. A subscription bills its plan's price in advance for each period
 * and its metered usage in arrears; a trial bills nothing until it ends; a plan change mid-period
 * is prorated to the second (credit for the unused time of the old plan, charge for the rest of the
 * period on the new one); cancelling at period end keeps the service until the paid period ends.
 */
import { type Currency, mulDivRound } from "../../../business/money";
import { addIntervals, type Interval } from "./periods";

export interface UsagePrice {
  /** The metered quantity (usage-monitoring's counter name). */
  metric: "api_requests";
  /** Units included in the plan price each period. */
  included: bigint;
  /** Units beyond `included` are billed per started block of `blockSize` at `blockAmount`. */
  blockSize: bigint;
  blockAmount: bigint;
}

export interface Plan {
  id: string;
  name: string;
  currency: Currency;
  amount: bigint;
  interval: Interval;
  trialDays: number;
  usage: UsagePrice | null;
}

export const SUBSCRIPTION_STATUSES = ["incomplete", "trialing", "active", "past_due", "unpaid", "canceled"] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

export interface Subscription {
  planId: string;
  status: SubscriptionStatus;
  /** Billing cycle anchor: periods are anchor + n intervals. */
  anchor: Date;
  periodStart: Date;
  periodEnd: Date;
  trialEnd: Date | null;
  cancelAtPeriodEnd: boolean;
  /** Credit owed to the customer (from downgrades), applied to the next invoices. Never negative. */
  creditBalance: bigint;
}

export type LineKind = "subscription" | "proration" | "usage" | "credit";

export interface InvoiceLine {
  kind: LineKind;
  description: string;
  quantity: bigint;
  amount: bigint;
  periodStart: Date;
  periodEnd: Date;
}

export class BillingError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "BillingError";
  }
}

const DAY_MS = 86_400_000;

/**
 * A new subscription: trialing when the plan has a trial and the user has had none before (one trial
 * per user: cancelling and subscribing again is not a fresh one), else incomplete until the first
 * invoice is paid.
 */
export function startSubscription(plan: Plan, now: Date, trialUsed = false): { subscription: Subscription; firstLines: InvoiceLine[] } {
  if (plan.trialDays > 0 && !trialUsed) {
    const trialEnd = new Date(now.getTime() + plan.trialDays * DAY_MS);
    return {
      subscription: { planId: plan.id, status: "trialing", anchor: trialEnd, periodStart: now, periodEnd: trialEnd, trialEnd, cancelAtPeriodEnd: false, creditBalance: 0n },
      firstLines: [],
    };
  }
  const periodEnd = addIntervals(now, plan.interval, 1);
  return {
    subscription: { planId: plan.id, status: "incomplete", anchor: now, periodStart: now, periodEnd, trialEnd: null, cancelAtPeriodEnd: false, creditBalance: 0n },
    firstLines: [subscriptionLine(plan, now, periodEnd)],
  };
}

export function subscriptionLine(plan: Plan, start: Date, end: Date): InvoiceLine {
  return { kind: "subscription", description: `${plan.name} (${plan.interval}ly)`, quantity: 1n, amount: plan.amount, periodStart: start, periodEnd: end };
}

/** Charge for `units` of metered usage in one period (0 when within the included units). */
export function usageLine(plan: Plan, units: bigint, start: Date, end: Date): InvoiceLine | null {
  const u = plan.usage;
  if (!u || units <= u.included) return null;
  const over = units - u.included;
  const blocks = (over + u.blockSize - 1n) / u.blockSize;
  return { kind: "usage", description: `${u.metric}: ${over} over ${u.included} included (${blocks} x ${u.blockSize})`, quantity: over, amount: blocks * u.blockAmount, periodStart: start, periodEnd: end };
}

/**
 * Proration of a plan change at `at` within the current period: a credit for the old plan's
 * unused time and a charge for the new plan over the same remainder. Seconds, rounded half away
 * from zero per line. During a trial nothing is prorated (nothing was charged).
 */
export function prorationLines(sub: Subscription, from: Plan, to: Plan, at: Date): InvoiceLine[] {
  if (from.currency !== to.currency) throw new BillingError("CURRENCY_CHANGE", `cannot change from ${from.currency} to ${to.currency} within a subscription`);
  if (from.interval !== to.interval) throw new BillingError("INTERVAL_CHANGE", `cannot change from ${from.interval}ly to ${to.interval}ly billing mid-period`);
  if (sub.status === "trialing") return [];
  const total = BigInt(Math.floor((sub.periodEnd.getTime() - sub.periodStart.getTime()) / 1000));
  const remaining = BigInt(Math.max(0, Math.floor((sub.periodEnd.getTime() - at.getTime()) / 1000)));
  if (remaining === 0n || total <= 0n) return [];
  return [
    { kind: "proration", description: `Unused time on ${from.name}`, quantity: 1n, amount: -mulDivRound(from.amount, remaining, total), periodStart: at, periodEnd: sub.periodEnd },
    { kind: "proration", description: `Remaining time on ${to.name}`, quantity: 1n, amount: mulDivRound(to.amount, remaining, total), periodStart: at, periodEnd: sub.periodEnd },
  ];
}

/**
 * Throws (BillingError) when `sub` may not change from `from` to `to`. `openInvoiceId`: an invoice
 * of the subscription still to be paid, if any. While one is open the plan does not change: a
 * proration credits the unused time of the old plan's price, which is money only if that price was
 * paid. Crediting it from an unpaid period turned a declined charge into spendable credit (subscribe
 * to an expensive plan with a declined card, downgrade: credit; upgrade back: paid from that credit).
 * Prorating only the charge instead would bill the period twice once dunning collects the open
 * invoice. The way on stays open: the invoice is paid (dunning retries it), or the user cancels.
 */
export function checkPlanChange(sub: Subscription, from: Plan, to: Plan, openInvoiceId: string | null = null): void {
  if (sub.status === "canceled" || sub.status === "unpaid") throw new BillingError("SUBSCRIPTION_INACTIVE", `subscription is ${sub.status}`);
  if (from.id === to.id) throw new BillingError("SAME_PLAN", "the subscription is already on this plan");
  if (openInvoiceId !== null)
    throw new BillingError("INVOICE_OPEN", `the subscription is ${sub.status} with invoice ${openInvoiceId} not paid yet; its plan can change once that invoice is paid (or cancel the subscription)`);
}

export function changePlan(sub: Subscription, from: Plan, to: Plan, at: Date): { subscription: Subscription; lines: InvoiceLine[] } {
  checkPlanChange(sub, from, to);
  return { subscription: { ...sub, planId: to.id }, lines: prorationLines(sub, from, to, at) };
}

/**
 * The period boundary: a subscription cancelled at period end ends; otherwise it moves to the
 * next period and returns the invoice lines (next period in advance, usage of the ended period).
 */
export function renew(sub: Subscription, plan: Plan, usageUnits: bigint): { subscription: Subscription; lines: InvoiceLine[] } {
  if (sub.status === "canceled" || sub.status === "unpaid") return { subscription: sub, lines: [] };
  if (sub.cancelAtPeriodEnd) return { subscription: { ...sub, status: "canceled" }, lines: [] };
  const wasTrial = sub.status === "trialing";
  const start = sub.periodEnd;
  const end = wasTrial ? addIntervals(sub.anchor, plan.interval, 1) : nextEnd(sub, plan);
  const lines = [subscriptionLine(plan, start, end)];
  const usage = wasTrial ? null : usageLine(plan, usageUnits, sub.periodStart, sub.periodEnd);
  if (usage) lines.push(usage);
  return { subscription: { ...sub, status: wasTrial ? "incomplete" : sub.status, periodStart: start, periodEnd: end }, lines };
}

function nextEnd(sub: Subscription, plan: Plan): Date {
  let n = 1;
  while (addIntervals(sub.anchor, plan.interval, n) <= sub.periodEnd) n++;
  return addIntervals(sub.anchor, plan.interval, n);
}

/** Monthly recurring revenue of a plan: a yearly price counts a twelfth per month (rounded). */
export function monthlyAmount(plan: Pick<Plan, "amount" | "interval">): bigint {
  return plan.interval === "month" ? plan.amount : mulDivRound(plan.amount, 1n, 12n);
}
