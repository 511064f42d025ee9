/**
 * Kafka topics and payloads of the business tier (declared in migrations/kafka.ts). Amounts are
 * integer minor units (JSON numbers, always safe integers: bounded by money.MAX_AMOUNT). Every
 * event carries a unique `eventId`; delivery is at-least-once (transactional outbox), consumers
 * dedupe on it.
 */
export const BUSINESS_TOPICS = {
  payments: "payments.events",
  billing: "billing.events",
  usage: "platform.usage",
} as const;

/** platform.usage, key = userId (canonical: kit userPartitionKey; "anonymous" without one): one per request through the gateway. */
export interface UsageEventMsg {
  eventId: string;
  ts: number;
  userId: string | null;
  apiKeyId: string | null;
  /** The catalog route segment (`orders` for /api/orders/...), `unknown` when none matched. */
  route: string;
  method: string;
  status: number;
  latencyMs: number;
}

/** payments.events, key = userId (canonical: kit userPartitionKey). */
/**
 * The reference of a payment that settles an invoice is `invoice:<invoice id>`. Only billing-service
 * sets it (payment-service's internal route); a client's own payment may not: billing would take it
 * for the invoice's charge.
 */
export const INVOICE_REFERENCE_PREFIX = "invoice:";

export interface PaymentEventMsg {
  eventId: string;
  /**
   * payment.refund_failed: a refund the processor took and then failed or canceled before it succeeded
   * (nothing went out; its amount is refundable again). payment.refund_reversed: a refund announced by
   * payment.refunded that failed afterwards (the money came back: it is no longer refunded).
   * payment.refund_adjusted: a refund announced by payment.refunded that the processor paid out at
   * another amount, booked at the processor's by an operator's settle (`refundedAmount` the processor's,
   * `previousRefundedAmount` what payment.refunded said; since session 54).
   */
  type: "payment.succeeded" | "payment.failed" | "payment.refunded" | "payment.refund_failed" | "payment.refund_reversed" | "payment.refund_adjusted";
  intentId: string;
  userId: string;
  amount: number;
  /**
   * The currency of the event's money: for payment.succeeded / payment.failed the payment's (of
   * `amount`); for the refund events the refund's, of `refundedAmount`, as payment-service booked it
   * from the processor's record: the payment's, unless an operator settled a refund the processor
   * made in another currency (POST /refund-issues/:id/settle), then the processor's. Never the
   * invoice's: billing compares it with the invoice's and takes a refund told in another as one it
   * cannot compare (give-backs.ts). Always one of business/money.ts CURRENCIES: a message with none,
   * or another, is set aside by every consumer before its handler (topicSchemas.ts).
   */
  currency: string;
  /** What was paid (e.g. `invoice:<uuid>`), as given when the intent was created. */
  reference: string | null;
  /**
   * For the refund events: the payment's currency, of `amount` (since session 53; `currency` is the
   * refund's). billing-service compares it with the invoice's (a message without it, from before, is taken
   * as in the invoice's).
   */
  paymentCurrency?: string;
  /** For payment.refunded, refund_failed, refund_reversed, refund_adjusted: the refund's amount; `amount` stays the payment's. */
  refundedAmount?: number;
  /** For payment.refund_adjusted: the refund's amount as it was booked (and announced) before. */
  previousRefundedAmount?: number;
  /** For the refund events: payment-service's refund id. */
  refundId?: string;
  failureCode?: string | null;
  ts: number;
}

/** A payments.events message about a refund: its `refundedAmount` is the refund's amount (`amount` the payment's). */
export function isRefundEvent(type: PaymentEventMsg["type"]): boolean {
  return type === "payment.refunded" || type === "payment.refund_failed" || type === "payment.refund_reversed" || type === "payment.refund_adjusted";
}

/** billing.events, key = userId (canonical: kit userPartitionKey). `mrr` is the subscription's monthly recurring revenue after the event (0 when not paying). */
export interface BillingEventMsg {
  eventId: string;
  type:
    | "subscription.created"
    | "subscription.updated"
    | "subscription.canceled"
    | "invoice.created"
    | "invoice.paid"
    | "invoice.payment_failed"
    | "invoice.uncollectible"
    | "invoice.voided";
  userId: string;
  subscriptionId: string;
  planId: string;
  status: string;
  currency: string;
  mrr: number;
  invoiceId?: string;
  amountDue?: number;
  amountPaid?: number;
  attempts?: number;
  nextAttemptAt?: string | null;
  ts: number;
}
