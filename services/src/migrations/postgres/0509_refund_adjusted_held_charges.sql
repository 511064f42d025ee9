-- revenue-analytics: payments.events gained payment.refund_adjusted (session 54: a refund announced by
-- payment.refunded that the processor paid out at another amount, booked at the processor's by an
-- operator's settle). Until now its insert broke ra_payments_type_check and the message was set aside
-- as a dead letter, so net revenue kept the amount first announced. The row keeps the event as told:
-- `amount` the refund's new amount (refundedAmount), `previous_amount` the one announced before
-- (previousRefundedAmount); cash refunded in a period moves by amount - previous_amount, in the period
-- the adjustment was booked (data.ts cashBetween). Only an adjustment has a previous amount.
ALTER TABLE ra_payments ADD COLUMN IF NOT EXISTS previous_amount bigint CHECK (previous_amount >= 0);
ALTER TABLE ra_payments DROP CONSTRAINT IF EXISTS ra_payments_type_check;
ALTER TABLE ra_payments ADD CONSTRAINT ra_payments_type_check
  CHECK (type IN ('payment.succeeded', 'payment.failed', 'payment.refunded', 'payment.refund_failed', 'payment.refund_reversed', 'payment.refund_adjusted'));
ALTER TABLE ra_payments DROP CONSTRAINT IF EXISTS ra_payments_previous_amount_check;
ALTER TABLE ra_payments ADD CONSTRAINT ra_payments_previous_amount_check
  CHECK ((type = 'payment.refund_adjusted') = (previous_amount IS NOT NULL));

-- billing-service: the held charges (bil_invoices.charge_held_at, migration 0508) are counted for the
-- operators' gauges at every scrape (billing-metrics.ts: how many, how many held past
-- BILLING_CHARGE_HOLD_OVERDUE_DAYS, the oldest hold's age); few rows, read from this partial index
-- rather than by scanning every invoice.
CREATE INDEX IF NOT EXISTS bil_invoices_charge_held ON bil_invoices (charge_held_at) WHERE status = 'open' AND charge_held_at IS NOT NULL;
