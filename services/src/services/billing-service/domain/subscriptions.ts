/**
 * Plans and subscriptions, pure. A subscription bills its plan's price in advance for each period
 * and its metered usage in arrears; a trial bills nothing until it ends; a plan change mid-period
 * is prorated to the second (credit for the unused time of the old plan, charge for the rest of the
 * period on the new one), its usage allowance to the millisecond; cancelling at period end keeps the
 * service until the paid period ends.
 * Usage is always priced by the plan in force when it happened: a plan change invoices the usage so
 * far under the old plan, and every ending (renewal, cancellation) invoices the usage not yet
 * invoiced.
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

/**
 * The status a client and billing's events see: a stored status, or `paused` while billing is
 * paused (`pausedAt`) for a subscription that has not ended. Derived, not stored: the stored status
 * keeps what the subscription's invoices made of it (active, past_due, ...), which the cycle and
 * dunning go on from when it resumes; `paused` is only how it reads meanwhile (its open invoices say
 * what is owed). Its MRR is 0 then (repo.ts emit).
 */
export type ShownStatus = SubscriptionStatus | "paused";
export function shownStatus(s: { status: SubscriptionStatus; pausedAt: Date | null | undefined }): ShownStatus {
  return s.pausedAt && s.status !== "canceled" && s.status !== "unpaid" ? "paused" : s.status;
}

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
  /**
   * The current period's usage before this instant is invoiced already (by a plan change, under the
   * plan then in force); null: none of it is.
   */
  usageBilledUntil: Date | null;
  /**
   * Billing paused (migration 0418): the period ended while the owner's account was disabled (or the
   * subscription was unpaid) and was not renewed, so no invoice covers time the service could not be
   * used. The next renewal starts a new period, and billing anchor, when it runs (renew's `at`).
   * Absent or null: not paused.
   */
  pausedAt?: Date | null;
}

export type LineKind = "subscription" | "proration" | "usage" | "credit" | "carried";

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
      subscription: { planId: plan.id, status: "trialing", anchor: trialEnd, periodStart: now, periodEnd: trialEnd, trialEnd, cancelAtPeriodEnd: false, creditBalance: 0n, usageBilledUntil: null },
      firstLines: [],
    };
  }
  const periodEnd = addIntervals(now, plan.interval, 1);
  return {
    subscription: { planId: plan.id, status: "incomplete", anchor: now, periodStart: now, periodEnd, trialEnd: null, cancelAtPeriodEnd: false, creditBalance: 0n, usageBilledUntil: null },
    firstLines: [subscriptionLine(plan, now, periodEnd)],
  };
}

export function subscriptionLine(plan: Plan, start: Date, end: Date): InvoiceLine {
  return { kind: "subscription", description: `${plan.name} (${plan.interval}ly)`, quantity: 1n, amount: plan.amount, periodStart: start, periodEnd: end };
}

/** What earlier invoices left owing, below the processor's minimum charge (`carried`), on the next invoice. */
export function carriedLine(amount: bigint, at: Date): InvoiceLine {
  return { kind: "carried", description: "Carried from earlier invoices (below the minimum charge)", quantity: 1n, amount, periodStart: at, periodEnd: at };
}

/** Charge for `units` of metered usage from `start` to `end` (null when within the `included` units: the plan's, for a whole period). */
export function usageLine(plan: Plan, units: bigint, start: Date, end: Date, included = plan.usage?.included ?? 0n): InvoiceLine | null {
  const u = plan.usage;
  if (!u || units <= included) return null;
  const over = units - included;
  const blocks = (over + u.blockSize - 1n) / u.blockSize;
  return { kind: "usage", description: `${u.metric}: ${over} over ${included} included (${blocks} x ${u.blockSize})`, quantity: over, amount: blocks * u.blockAmount, periodStart: start, periodEnd: end };
}

/** The part of the current period whose usage is not invoiced yet, up to `until` (at most the period's end). */
export function unbilledUsage(sub: Pick<Subscription, "periodStart" | "periodEnd" | "usageBilledUntil">, until: Date): { start: Date; end: Date } {
  const start = sub.usageBilledUntil && sub.usageBilledUntil > sub.periodStart ? sub.usageBilledUntil : sub.periodStart;
  const end = until < sub.periodEnd ? until : sub.periodEnd;
  return { start, end: end < start ? start : end };
}

/**
 * The plan's included units for the part of the period from `start` to `paidUntil` (the end of the
 * time its price was charged for), prorated to the millisecond, the precision usage is metered at
 * (it was whole seconds: a part under a second had no allowance). A period split between plans
 * gives each plan its share: switching back and forth never grants more than one period's
 * allowance, as it would if each part had the whole of it.
 */
export function includedUnits(plan: Plan, sub: Pick<Subscription, "periodStart" | "periodEnd">, start: Date, paidUntil: Date): bigint {
  const included = plan.usage?.included ?? 0n;
  const total = BigInt(sub.periodEnd.getTime() - sub.periodStart.getTime());
  const part = BigInt(Math.max(0, paidUntil.getTime() - start.getTime()));
  return total <= 0n || part >= total ? included : mulDivRound(included, part, total);
}

/**
 * What ending the subscription at `at` leaves to invoice: the period's usage not invoiced yet (usage
 * is billed in arrears; before, a cancelled subscription's last period was never billed). Its price
 * is not refunded, so the allowance runs to the period's end. Nothing for a trial (its usage is free).
 */
export function finalLines(sub: Subscription, plan: Plan, units: bigint, at: Date): InvoiceLine[] {
  if (sub.status === "trialing" || sub.status === "canceled") return [];
  const w = unbilledUsage(sub, at);
  const usage = usageLine(plan, units, w.start, w.end, includedUnits(plan, sub, w.start, sub.periodEnd));
  return usage ? [usage] : [];
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

/**
 * A plan change at `at`: the proration, and the usage not yet invoiced (`usedUnits`, up to `at`)
 * priced by the old plan with its share of the allowance (before, the renewal priced the whole
 * period's usage by the plan of its end: a switch to a plan with a large allowance just before
 * renewal made the period's usage free).
 */
export function changePlan(sub: Subscription, from: Plan, to: Plan, at: Date, usedUnits = 0n): { subscription: Subscription; lines: InvoiceLine[] } {
  checkPlanChange(sub, from, to);
  const lines = prorationLines(sub, from, to, at);
  if (sub.status === "trialing") return { subscription: { ...sub, planId: to.id }, lines };
  const w = unbilledUsage(sub, at);
  const usage = usageLine(from, usedUnits, w.start, w.end, includedUnits(from, sub, w.start, w.end));
  return { subscription: { ...sub, planId: to.id, usageBilledUntil: w.end }, lines: usage ? [...lines, usage] : lines };
}

/**
 * The period boundary: a subscription cancelled at period end ends, with a final invoice of the
 * period's usage; otherwise it moves to the next period and returns the invoice lines (next period
 * in advance, usage of the ended period in arrears). `usageUnits`: the units of
 * unbilledUsage(sub, sub.periodEnd). A paused subscription (`pausedAt`) resumes: its next period
 * starts at `at` (the renewal's time) and anchors the cycle there, not at the old period's end, so
 * the time it was paused is never billed (back-dated, each period missed was one more renewal).
 */
export function renew(sub: Subscription, plan: Plan, usageUnits: bigint, at: Date = sub.periodEnd): { subscription: Subscription; lines: InvoiceLine[] } {
  if (sub.status === "canceled" || sub.status === "unpaid") return { subscription: sub, lines: [] };
  const usage = finalLines(sub, plan, usageUnits, sub.periodEnd);
  if (sub.cancelAtPeriodEnd) return { subscription: { ...sub, status: "canceled", pausedAt: null }, lines: usage };
  const wasTrial = sub.status === "trialing";
  const resumed = sub.pausedAt ? { anchor: at, start: at, end: addIntervals(at, plan.interval, 1) } : undefined;
  const anchor = resumed?.anchor ?? sub.anchor;
  const start = resumed?.start ?? sub.periodEnd;
  const end = resumed?.end ?? (wasTrial ? addIntervals(sub.anchor, plan.interval, 1) : nextEnd(sub, plan));
  const lines = [subscriptionLine(plan, start, end), ...usage];
  return { subscription: { ...sub, status: wasTrial ? "incomplete" : sub.status, anchor, periodStart: start, periodEnd: end, usageBilledUntil: null, pausedAt: null }, lines };
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
