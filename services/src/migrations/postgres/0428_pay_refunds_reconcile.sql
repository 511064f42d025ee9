-- payment-service: pending refunds are settled by a sweep (refund-reconciler.ts). Before, a refund
-- whose processor call timed out, or whose service crashed after the pending row was written, stayed
-- `pending` for ever: its amount held against the payment, so it could never be refunded again.
-- `sent_at`: when a refund request with this refund's idempotency key was last sent (the first call,
-- or a retry of the same key); the sweep fails a refund the processor never saw only once no request
-- sent then can still reach it. `failure_code`: why a refund failed (the processor's refusal, its
-- refund's status, or `never_reached_processor`), so a retry of the key can say which.
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS sent_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS failure_code text;
-- Rows from before: their last send was no later than their creation (retries were not recorded).
UPDATE pay_refunds SET sent_at = created_at WHERE status = 'pending' AND sent_at > created_at;
CREATE INDEX IF NOT EXISTS pay_refunds_pending ON pay_refunds (sent_at) WHERE status = 'pending';
