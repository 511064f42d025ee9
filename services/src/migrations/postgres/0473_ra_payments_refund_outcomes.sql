-- revenue-analytics: payments.events gained payment.refund_failed (a refund the processor took, then
-- failed or canceled before it succeeded: no cash moved) and payment.refund_reversed (a refund that
-- succeeded and failed afterwards: the money came back, so it is no longer counted refunded).
-- `amount` of both: the refund's amount. Cash refunded in a period = refunded - reversed in it.
ALTER TABLE ra_payments DROP CONSTRAINT IF EXISTS ra_payments_type_check;
ALTER TABLE ra_payments ADD CONSTRAINT ra_payments_type_check
  CHECK (type IN ('payment.succeeded', 'payment.failed', 'payment.refunded', 'payment.refund_failed', 'payment.refund_reversed'));
