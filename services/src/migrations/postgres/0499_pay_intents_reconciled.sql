-- payment-service's reconciliation (payments.ts reconcile, repo.ts staleOpen), two changes:
-- * An intent it failed as `never_reached_processor` (our inference) was looked up again only for the
--   in-flight bound after the close: a charge the processor reported later (or while every lookup of that
--   window failed), its webhook lost, was never booked. It is looked up again for
--   PAYMENT_NEVER_REACHED_RECHECK_DAYS, each pass within the in-flight bound, then at most once an hour.
-- * Open intents were taken oldest first, 200 a pass: 200 that stay open (`processing` for days, one the
--   processor reports otherwise: a mismatch for an operator) took every pass, and an intent left
--   `created` by a crash behind them was never looked up. They are taken least recently looked up first.
-- `reconciled_at`: when reconciliation last asked the processor about the intent (NULL: never).
ALTER TABLE pay_intents ADD COLUMN IF NOT EXISTS reconciled_at timestamptz;
CREATE INDEX IF NOT EXISTS pay_intents_open_reconciled ON pay_intents ((coalesce(reconciled_at, created_at))) WHERE status IN ('created', 'processing');
