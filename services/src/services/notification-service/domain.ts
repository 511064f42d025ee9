/**
 * notification-service rules, no I/O: which platform event becomes which notice, the templates,
 * quiet hours, retry backoff and the webhook signature.
 */
import { createHmac } from "node:crypto";
import { type BillingEventMsg, INVOICE_REFERENCE_PREFIX, isRefundEvent, type PaymentEventMsg } from "../../business/events";
import { formatMoney, isCurrency } from "../../business/money";
import type { ComplianceAlert } from "../../trading/compliance";
import { traderAlert } from "../../trading/complianceAlertView";
import type { ExecutionMsg, OrderEventMsg } from "../../trading/events";

export const CHANNELS = ["email", "telegram", "webhook"] as const;
export type Channel = (typeof CHANNELS)[number];
export const CATEGORIES = ["trading", "risk", "compliance", "billing"] as const;
export type Category = (typeof CATEGORIES)[number];

/** One thing to tell one user. `dedupKey` is the same for every delivery of the same fact. */
export interface Notice {
  dedupKey: string;
  userId: string;
  kind: string;
  category: Category;
  /** Delivered even in quiet hours (high-severity compliance alerts). */
  urgent: boolean;
  subject: string;
  text: string;
  /** The webhook body's `data`: the facts, no secrets. */
  data: Record<string, unknown>;
  at: number;
}

/** Subjects go into an e-mail header: one line, bounded. */
const oneLine = (s: string, max = 200) => s.replace(/[\r\n\t]+/g, " ").slice(0, max);
const money = (amount: number, currency: string) => (isCurrency(currency) ? formatMoney(BigInt(amount), currency) : `${amount} ${currency}`);
const notice = (n: Omit<Notice, "subject" | "urgent"> & { subject: string; urgent?: boolean }): Notice => ({ ...n, urgent: n.urgent ?? false, subject: oneLine(n.subject) });

export function fromExecution(m: ExecutionMsg): Notice | null {
  if (m.type === "fill") {
    const f = m.fill;
    return notice({
      dedupKey: `fill:${f.fillId}`, userId: f.userId, kind: "order.filled", category: "trading", at: f.ts,
      subject: `Filled: ${f.side} ${f.quantity} ${f.symbol} @ ${f.price}`,
      text: `Your order ${f.orderId} was filled: ${f.side} ${f.quantity} ${f.symbol} at ${f.price} (fee ${f.fee}, ${f.liquidity}).`,
      data: { fillId: f.fillId, orderId: f.orderId, symbol: f.symbol, side: f.side, quantity: f.quantity, price: f.price, fee: f.fee, ts: f.ts },
    });
  }
  if (m.type === "order.rejected") return rejected(m.orderId, m.userId, m.symbol, m.reason, m.reason, m.ts);
  return null;
}

function rejected(orderId: string, userId: string, symbol: string, reason: string, message: string, at: number): Notice {
  return notice({
    // Same key from either topic: one rejection is told once.
    dedupKey: `order-rejected:${orderId}`, userId, kind: "order.rejected", category: "risk", at,
    subject: `Order rejected: ${symbol} (${reason})`,
    text: `Your order ${orderId} on ${symbol} was rejected: ${message}.`,
    data: { orderId, symbol, reason, message },
  });
}

export function fromOrderEvent(m: OrderEventMsg): Notice | null {
  if (m.type !== "order.rejected") return null;
  const o = m.order;
  return rejected(o.orderId, o.userId, o.symbol, o.rejectReason ?? "rejected", o.rejectMessage ?? o.rejectReason ?? "rejected", m.ts);
}

/** Told to the trader in general terms: never the alert's message or evidence, which name what tripped it (trading/complianceAlertView.ts). */
export function fromComplianceAlert(a: ComplianceAlert): Notice {
  const v = traderAlert(a);
  const order = v.orderId === null ? "" : `, order ${v.orderId}`;
  return notice({
    dedupKey: `compliance:${a.alertId}`, userId: a.userId, kind: "compliance.alert", category: "compliance", at: a.ts, urgent: a.severity === "high",
    subject: `Compliance alert (${v.severity}): ${v.rule} on ${v.symbol}`,
    text: `A compliance alert was raised on your account about ${v.summary} (${v.symbol}${order}; rule ${v.rule}, severity ${v.severity}). The compliance team reviews it.`,
    data: { alertId: v.alertId, rule: v.rule, summary: v.summary, severity: v.severity, symbol: v.symbol, orderId: v.orderId, ts: a.ts },
  });
}

const BILLING_TEXT: Partial<Record<BillingEventMsg["type"], (e: BillingEventMsg) => [string, string]>> = {
  "subscription.created": (e) => [`Subscription started: ${e.planId}`, `Your subscription to ${e.planId} was created (status ${e.status}).`],
  "subscription.canceled": (e) => [`Subscription canceled: ${e.planId}`, `Your subscription to ${e.planId} was canceled.`],
  "invoice.paid": (e) => [`Invoice paid: ${money(e.amountPaid ?? 0, e.currency)}`, `Thank you: invoice ${e.invoiceId} for ${money(e.amountPaid ?? 0, e.currency)} is paid.`],
  "invoice.payment_failed": (e) => [
    `Payment failed for invoice ${e.invoiceId}`,
    `We could not charge ${money(e.amountDue ?? 0, e.currency)} for invoice ${e.invoiceId} (attempt ${e.attempts ?? 1})${e.nextAttemptAt ? `; next attempt ${e.nextAttemptAt}` : ""}.`,
  ],
  "invoice.voided": (e) => [`Invoice ${e.invoiceId} voided`, `Invoice ${e.invoiceId} (${money(e.amountDue ?? 0, e.currency)}) was voided: its subscription was canceled, and nothing more will be charged for it.`],
  "invoice.uncollectible": (e) => [`Invoice ${e.invoiceId} is unpaid`, `Invoice ${e.invoiceId} (${money(e.amountDue ?? 0, e.currency)}) could not be collected; your subscription is unpaid.`],
};

export function fromBillingEvent(e: BillingEventMsg): Notice | null {
  // An own entry only: a type such as "constructor" (any id passes the topic's schema) is no billing text.
  const t = Object.hasOwn(BILLING_TEXT, e.type) ? BILLING_TEXT[e.type] : undefined;
  if (!t) return null;
  const [subject, text] = t(e);
  return notice({
    dedupKey: `billing:${e.eventId}`, userId: e.userId, kind: e.type, category: "billing", at: e.ts, subject, text,
    data: { subscriptionId: e.subscriptionId, planId: e.planId, status: e.status, invoiceId: e.invoiceId ?? null, amountDue: e.amountDue ?? null, amountPaid: e.amountPaid ?? null, currency: e.currency },
  });
}

/** Invoice payments are told by billing's invoice events; payments tells the rest (and every refund). */
export function fromPaymentEvent(e: PaymentEventMsg): Notice | null {
  const aboutRefund = isRefundEvent(e.type);
  if (!aboutRefund && e.reference?.startsWith(INVOICE_REFERENCE_PREFIX)) return null;
  const amount = aboutRefund ? (e.refundedAmount ?? e.amount) : e.amount;
  const what = {
    "payment.succeeded": "Payment received",
    "payment.failed": "Payment failed",
    "payment.refunded": "Refund issued",
    // The processor could not pay the refund out (before or after it succeeded): the money was not returned.
    "payment.refund_failed": "Refund failed",
    "payment.refund_reversed": "Refund reversed",
    // The processor paid the refund out at another amount than first told (an operator booked its amount).
    "payment.refund_adjusted": "Refund amount corrected",
  }[e.type];
  return notice({
    dedupKey: `payment:${e.eventId}`, userId: e.userId, kind: e.type, category: "billing", at: e.ts,
    subject: `${what}: ${money(amount, e.currency)}`,
    text: `${what}: ${money(amount, e.currency)} (payment ${e.intentId}${e.failureCode ? `, ${e.failureCode}` : ""}).`,
    data: { intentId: e.intentId, amount, currency: e.currency, reference: e.reference, failureCode: e.failureCode ?? null },
  });
}

export interface QuietHours { start: string; end: string }

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** The wall clock of an IANA time zone at `at`, to the minute (month 1-12). */
function wallClock(at: Date, timeZone: string): { year: number; month: number; day: number; hour: number; minute: number } {
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(at);
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return { year: get("year"), month: get("month"), day: get("day"), hour: get("hour"), minute: get("minute") };
}

/** Minutes since local midnight in an IANA time zone. */
export function localMinutes(at: Date, timeZone: string): number {
  const { hour, minute } = wallClock(at, timeZone);
  return hour * 60 + minute;
}

/**
 * A Telegram chat id (the schema's decimal text): a non-zero integer of at most 52 significant bits,
 * what the Bot API documents for Chat.id (groups are negative). Before, any 20 digits were saved,
 * "99999999999999999999" and "0" included: chats no bot can post to.
 */
export function isTelegramChatId(id: string): boolean {
  const n = BigInt(id);
  return n !== 0n && (n < 0n ? -n : n) < 2n ** 52n;
}

/**
 * The zone's name in its proper case (`europe/berlin` is `Europe/Berlin`, `utc` is `UTC`), or undefined for no zone Intl
 * knows. Intl reads a name in any case, so a name saved as the client spelled it worked but was answered back so; the
 * preferences are saved and answered in this spelling. Only the case is Intl's: a name Intl resolves to another id (a
 * link: Node 20's ICU names `Asia/Kolkata` by CLDR's older `Asia/Calcutta`, `US/Pacific` as `America/Los_Angeles`)
 * is kept as sent, the same zone, so a client never gets back a name it did not send.
 */
export function canonicalTimeZone(tz: string): string | undefined {
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat(undefined, { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
  return resolved.toLowerCase() === tz.toLowerCase() ? resolved : tz;
}

/** The zone's offset from UTC at `at`, in minutes: its wall clock's minute less UTC's. */
function offsetMinutes(at: Date, timeZone: string): number {
  const c = wallClock(at, timeZone);
  const wall = Date.UTC(c.year, c.month - 1, c.day, c.hour, c.minute);
  return Math.round((wall - Math.floor(at.getTime() / 60_000) * 60_000) / 60_000);
}

/**
 * When a non-urgent notice may go out: now, or the end of the user's quiet hours (a window may
 * wrap midnight, e.g. 22:00-07:00; start == end means none).
 */
export function deliverAfter(now: Date, quiet: QuietHours | null, timeZone: string): Date {
  if (!quiet) return now;
  const s = minutesOf(quiet.start);
  const e = minutesOf(quiet.end);
  if (s === e) return now;
  const m = localMinutes(now, timeZone);
  const inside = s < e ? m >= s && m < e : m >= s || m < e;
  if (!inside) return now;
  const wait = (e - m + 1440) % 1440;
  let at = new Date(now.getTime() + wait * 60_000);
  // The wait is on the wall clock: a DST change within it moves the end by the change. Without this,
  // quiet hours of 01:00-04:00 ended at 05:00 the night clocks go forward and at 03:00, inside them,
  // the night they go back (session 64b).
  const shift = offsetMinutes(now, timeZone) - offsetMinutes(at, timeZone);
  if (shift !== 0) {
    const shifted = new Date(at.getTime() + shift * 60_000);
    at = localMinutes(shifted, timeZone) === e ? shifted : changeBetween(shifted, at, timeZone);
  }
  at.setUTCSeconds(0, 0);
  return at;
}

/**
 * The first minute in (`from`, `to`] on `to`'s offset: for an end the change skips (02:30 the night
 * clocks go from 02:00 to 03:00), the change itself, the first wall-clock time after the end.
 */
function changeBetween(from: Date, to: Date, timeZone: string): Date {
  const target = offsetMinutes(to, timeZone);
  let lo = from.getTime();
  let hi = to.getTime();
  while (hi - lo > 60_000) {
    const mid = lo + Math.max(1, Math.floor((hi - lo) / 120_000)) * 60_000;
    if (offsetMinutes(new Date(mid), timeZone) === target) hi = mid;
    else lo = mid;
  }
  return new Date(hi);
}

/** Exponential backoff: base x 2^(attempt-1), capped. `attempt` counts failed attempts (>= 1). */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
}

/**
 * Webhook signature: `v1=` + hex HMAC-SHA256 over `<unix seconds>.<raw body>` with the endpoint's
 * secret. The timestamp is signed so a receiver can refuse replays older than its tolerance.
 */
export function webhookSignature(secret: string, timestampS: number, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestampS}.${body}`).digest("hex")}`;
}

/** The webhook request body for a notice. */
export function webhookBody(n: Pick<Notice, "dedupKey" | "kind" | "at" | "data">): string {
  return JSON.stringify({ id: n.dedupKey, type: n.kind, createdAt: new Date(n.at).toISOString(), data: n.data });
}

/**
 * The channels the user wants a category's notices on: their choice for it, else every channel. No
 * category is exempt (each one's channels may be chosen, none included: routes.ts). The one rule, applied
 * when a notice is queued (channelsFor) and again when its delivery goes out (wantsChannel, worker.ts).
 */
const chosenChannels = (category: Category, chosen: Partial<Record<Category, Channel[]>> | null): readonly Channel[] => chosen?.[category] ?? CHANNELS;

/** Channels a category goes to: the user's choice, else every channel the user has an address for. */
export function channelsFor(category: Category, chosen: Partial<Record<Category, Channel[]>> | null, available: Set<Channel>): Channel[] {
  return chosenChannels(category, chosen).filter((c) => available.has(c));
}

/**
 * Whether the user still wants a category's notices on `channel`. Checked again at send time: a delivery
 * waits (quiet hours, the rate limit, a retry) and the user may have switched the channel off for its
 * category since; only the address was checked so, and every notice queued before went out anyway.
 */
export function wantsChannel(category: Category, chosen: Partial<Record<Category, Channel[]>> | null, channel: Channel): boolean {
  return chosenChannels(category, chosen).includes(channel);
}
