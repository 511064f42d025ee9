-- payment-service: a refund that succeeded can still fail at the processor days later (a closed card:
-- the money comes back). Its failure webhook lost, the reconciler never saw it: it swept only pending
-- refunds. It now also re-checks refunds that succeeded within PAYMENT_REFUND_RECHECK_DAYS, each at
-- most once every PAYMENT_REFUND_RECHECK_EVERY_MINUTES (refund-reconciler.ts recheck), claimed as the
-- pending sweep claims (reconcile_claim, FOR UPDATE SKIP LOCKED: two replicas never check one twice).
-- `succeeded_at`: when the refund was booked (rows from before: their last change, else their creation).
-- `rechecked_at`: when the processor's record of it was last read by that re-check.
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS succeeded_at timestamptz;
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS rechecked_at timestamptz;
UPDATE pay_refunds SET succeeded_at = coalesce(updated_at, created_at) WHERE status = 'succeeded' AND succeeded_at IS NULL;
CREATE INDEX IF NOT EXISTS pay_refunds_recheck ON pay_refunds ((coalesce(rechecked_at, succeeded_at))) WHERE status = 'succeeded';
