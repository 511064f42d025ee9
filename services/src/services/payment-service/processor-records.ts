/**
 * The processor's answers and events as our records can take them: Stripe's PaymentIntent and Refund
 * objects read field by field, each field checked (a signed event carries whatever the processor's
 * account was given), and the webhook event's parts. No I/O: the HTTP client is ./processor.ts.
 */
import type Stripe from "stripe";
import type { RemoteIntent } from "./domain/reconcile";
import type { RemoteRefund } from "./domain/refund-settlement";

export interface ProcessorIntent extends RemoteIntent {
  failureCode: string | null;
  failureMessage: string | null;
  /** Our intent id from metadata (webhooks). */
  intentId: string | null;
}

/** The processor's Refund object (Stripe's), as its events and answers carry it. */
export interface ProcessorRefund extends RemoteRefund {
  amount: bigint;
  currency: string;
  /** The PaymentIntent it refunds. */
  paymentIntent: string | null;
  /** Our refund id from the `refund_id` metadata we send, or null when it cannot be one. */
  refundId: string | null;
}

export interface ProcessorEvent {
  id: string;
  type: string;
  /** The event's `created` time (Stripe: unix seconds), in ms: orders two reports of one object (null: none given). */
  createdMs: number | null;
  intent: ProcessorIntent | null;
  refund: ProcessorRefund | null;
}

/** 9999-12-31T23:59:59Z, in unix seconds: an event's `created` time past it is no time. */
const LAST_UNIX_S = 253_402_300_799;

/** Our intent and refund ids (randomUUID), as PostgreSQL's uuid column takes them. */
const OUR_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Our intent id from a PaymentIntent's `intent_id` metadata, or null when it cannot be one: the
 * processor signs events for every PaymentIntent of the account, and one made on its dashboard or by
 * another integration carries whatever metadata it was given (a text that is no UUID reached the uuid
 * column: a 500, the event forgotten, and the processor retried it for days).
 */
function ourId(metadata: Stripe.Metadata | null | undefined, key: "intent_id" | "refund_id"): string | null {
  const v = metadata?.[key];
  return typeof v === "string" && OUR_ID.test(v) ? v : null;
}

/**
 * A processor id or code as a signed event carries it: a string of 1 to 255 characters, else null.
 * Stripe's are far shorter; an object, a number or a huge text in its place reached the unique
 * columns (processor_intent_id, processor_refund_id: a btree refuses a key over ~2.7 kB) as a 500.
 */
function idOf(v: unknown): string | null {
  return typeof v === "string" && v.length > 0 && v.length <= 255 ? v : null;
}

/** An amount in minor units, or -1 when it is none (a fraction, a text, too large): no report of ours has it. */
function minorOf(v: unknown): bigint {
  return typeof v === "number" && Number.isSafeInteger(v) ? BigInt(v) : -1n;
}

/** The PaymentIntent as our records can take it (an event's without an id is not taken: parseWebhook). */
export function toIntent(pi: Stripe.PaymentIntent): ProcessorIntent {
  return {
    id: idOf(pi.id) ?? "",
    status: typeof pi.status === "string" ? pi.status : "",
    amount: minorOf(pi.amount),
    currency: typeof pi.currency === "string" ? pi.currency : "",
    fee: 0n, // the fee lives on the balance transaction; not fetched (see README)
    failureCode: idOf(pi.last_payment_error?.code),
    failureMessage: typeof pi.last_payment_error?.message === "string" ? pi.last_payment_error.message.slice(0, 1_000) : null,
    intentId: ourId(pi.metadata, "intent_id"),
  };
}

/** The Refund as our records can take it, or undefined when it has no id to know it by. */
export function toRefund(r: Stripe.Refund): ProcessorRefund | undefined {
  const id = idOf(r.id);
  if (!id) return undefined;
  const pi: unknown = r.payment_intent;
  return {
    id,
    status: typeof r.status === "string" ? r.status : r.status == null ? "pending" : "",
    failureReason: idOf(r.failure_reason),
    amount: minorOf(r.amount),
    currency: typeof r.currency === "string" ? r.currency : "",
    paymentIntent: idOf(pi) ?? (pi && typeof pi === "object" ? idOf((pi as { id?: unknown }).id) : null),
    refundId: ourId(r.metadata, "refund_id"),
  };
}

/** A verified webhook event (Stripe's Event object) as our records take it: its id, type, time, and the PaymentIntent or Refund it carries. */
export function eventOf(ev: Stripe.Event): ProcessorEvent {
  const obj: { object?: string } | null | undefined = ev.data?.object;
  return {
    // (not one: `""`, which applyWebhook acknowledges and ignores: no id to record it by)
    id: idOf(ev.id) ?? "",
    type: idOf(ev.type) ?? "",
    // (a time no timestamp column holds, before 1970 or after 9999, is none)
    createdMs: Number.isSafeInteger(ev.created) && ev.created >= 0 && ev.created < LAST_UNIX_S ? ev.created * 1000 : null,
    intent: obj?.object === "payment_intent" && idOf((obj as Stripe.PaymentIntent).id) ? toIntent(obj as Stripe.PaymentIntent) : null,
    refund: (obj?.object === "refund" && toRefund(obj as Stripe.Refund)) || null,
  };
}
