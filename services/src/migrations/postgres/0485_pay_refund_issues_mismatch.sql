-- payment-service: the processor's amount and currency of a refund were compared only in its webhooks
-- (refund-events.ts; a mismatch there was logged at every event and ignored). Its answer to our create
-- call, the reconciler's lookup of a pending refund and the re-check of a succeeded one applied the
-- status whatever amount or currency the processor reported: a refund of 25.00 answered for our 30.00
-- was booked at 30.00. Every place now compares them first (domain/refund-status.ts mismatchOf): a report
-- of another amount or currency is not applied (the refund stays as it was: pending and held, or
-- succeeded), and is recorded once for an operator here, `amount_mismatch` or `currency_mismatch`.
-- `processor_amount` / `processor_currency`: what the processor reported (null: no amount it could be;
-- the currency cut at 16 characters), beside `amount`, ours.
ALTER TABLE pay_refund_issues DROP CONSTRAINT IF EXISTS pay_refund_issues_kind_check;
ALTER TABLE pay_refund_issues ADD CONSTRAINT pay_refund_issues_kind_check
  CHECK (kind IN ('exceeds_payment', 'not_found', 'amount_mismatch', 'currency_mismatch'));
ALTER TABLE pay_refund_issues ADD COLUMN IF NOT EXISTS processor_amount bigint;
ALTER TABLE pay_refund_issues ADD COLUMN IF NOT EXISTS processor_currency text;
