/**
 * How long an applied payments.events event id (bil_processed_events) must be kept. Its row makes a
 * redelivered event apply nothing: without it a `payment.failed` told again would count a failed
 * attempt twice (dunning's next step early, an invoice given up too soon). An event comes back only
 * from `payments.events` (a consumer group reset to the earliest offset reads all of it; the relay
 * sends a row again only until it is marked sent), whose `retention.ms` and `segment.ms`
 * migrations/kafka.ts declares and applies: a broker deletes whole segments once their newest record
 * is past the retention, so a record outlives it by up to a segment's roll. Plus a day's margin (a
 * retention check's lag, clocks). In whole days, rounded up: 92 with the declared 90 days and daily roll.
 */
const DAY_MS = 86_400_000;

export function processedEventRetentionFloorDays(payments: { retentionMs: number; segmentMs: number }): number {
  return Math.ceil((payments.retentionMs + payments.segmentMs + DAY_MS) / DAY_MS);
}
