/**
 * Kafka topics and payloads of the business tier (declared in migrations/kafka.ts). Amounts are
 * integer minor units (JSON numbers, always safe integers: bounded by money.MAX_AMOUNT). Every
 * event carries a unique `eventId`; delivery is at-least-once (transactional outbox), consumers
 * dedupe on it.
 */
export const BUSINESS_TOPICS = {
  payments: "payments.events",
  billing: "billing.events",
} as const;

/** payments.events, key = userId. */
export interface PaymentEventMsg {
  eventId: string;
  type: "payment.succeeded" | "payment.failed" | "payment.refunded";
  intentId: string;
  userId: string;
  amount: number;
  currency: string;
  /** What was paid (e.g. `invoice:<uuid>`), as given when the intent was created. */
  reference: string | null;
  /** For payment.refunded: the refund's amount; `amount` stays the payment's. */
  refundedAmount?: number;
  failureCode?: string | null;
  ts: number;
}
