-- payment-service: a refund's status follows the processor's refund events (refund.created,
-- refund.updated, refund.failed, charge.refund.updated) and answers (refund-events.ts, refund-repo.ts).
-- Before, refund webhooks were ignored: a refund the processor reported pending and then failed or
-- canceled, or that failed after succeeding, stayed pending or succeeded here.
-- `processor_status`: the processor's own status last applied (pending, requires_action, succeeded,
-- failed, canceled); `status` stays what the refund holds against the payment (pending / succeeded /
-- failed). `processor_status_at`: the `created` time of the event that reported it, so a late older
-- event never moves it back (domain/refund-status.ts). `updated_at`: when the row last changed.
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS processor_status text
  CHECK (processor_status IN ('pending', 'requires_action', 'succeeded', 'failed', 'canceled'));
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS processor_status_at timestamptz;
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
-- Rows from before: a succeeded one was one the processor answered succeeded (or pending, then booked
-- as succeeded: a later failure still reverses it); their last change is unknown, their creation is kept.
UPDATE pay_refunds SET processor_status = 'succeeded' WHERE status = 'succeeded' AND processor_status IS NULL;
UPDATE pay_refunds SET updated_at = created_at;
