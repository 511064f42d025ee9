-- Retention of the two dedupe tables (found in session 48: a row per event id, kept forever).
-- payment-service: pay_webhook_events (a processor webhook event id handled, so a redelivery is not
-- applied twice) loses rows received longer ago than PAYMENT_WEBHOOK_EVENT_RETENTION_DAYS, no fewer
-- than the processor's retry window (Stripe: 3 days) and a day's margin.
-- billing-service: bil_processed_events (a payments.events event id applied, so a redelivery moves no
-- invoice twice) loses rows applied longer ago than BILLING_PROCESSED_EVENT_RETENTION_DAYS, no fewer
-- than payments.events' retention, its segments' roll and a day's margin (92 days).
-- Both delete batches of the oldest rows: these indexes serve that order and bound.
CREATE INDEX IF NOT EXISTS pay_webhook_events_received ON pay_webhook_events (received_at);
CREATE INDEX IF NOT EXISTS bil_processed_events_applied ON bil_processed_events (applied_at);
