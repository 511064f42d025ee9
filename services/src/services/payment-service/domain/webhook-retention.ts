/**
 * How long a handled webhook event id (pay_webhook_events) must be kept. Its row makes a redelivery of
 * the event a `duplicate` instead of applying it again. A captured request replayed by anyone else is
 * refused once its signature is older than PAYMENT_WEBHOOK_TOLERANCE_S (at most an hour), so past
 * that only the processor itself sends an event again: Stripe retries a webhook not acknowledged for
 * up to 3 days in live mode, each attempt signed anew, the last one accepted until its signature is
 * the tolerance old. Plus a day's margin (clocks, a retry late at the processor): 5 days by default.
 * The default retention (30 days) also covers an operator resending an event by hand, from the
 * processor's dashboard or its List Events API, which keeps events 30 days.
 */
const DAY_MS = 86_400_000;
/** Stripe's automatic webhook retries in live mode: up to 3 days (docs.stripe.com/webhooks). */
export const PROCESSOR_WEBHOOK_RETRY_MS = 3 * DAY_MS;

/** The least PAYMENT_WEBHOOK_EVENT_RETENTION_DAYS, in whole days rounded up. */
export function webhookEventRetentionFloorDays(webhookToleranceS: number): number {
  return Math.ceil((PROCESSOR_WEBHOOK_RETRY_MS + webhookToleranceS * 1000 + DAY_MS) / DAY_MS);
}
