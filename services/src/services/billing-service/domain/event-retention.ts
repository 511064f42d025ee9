/**
 * How long an applied payments.events event id (bil_processed_events) must be kept. Its row makes a
 * redelivered event apply nothing: without it a `payment.failed` told again would count a failed
 * attempt twice (dunning's next step early, an invoice given up too soon). An event comes back only
 * from `payments.events` (the relay sends a row again only until it is marked sent), so the floor is
 * that topic's lifetime and a day's margin (migrations/kafka.ts redeliveryFloorDays): 92 days with the
 * declared 90 days and daily roll.
 */
import { redeliveryFloorDays, type TopicLifetime } from "../../../migrations/kafka";

export function processedEventRetentionFloorDays(payments: TopicLifetime): number {
  return redeliveryFloorDays(payments);
}
