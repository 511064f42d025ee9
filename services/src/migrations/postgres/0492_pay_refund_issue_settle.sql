-- payment-service: a pending refund whose processor record disagrees with ours (an amount_mismatch or
-- currency_mismatch issue, migration 0485) stayed pending and held for ever unless the processor's record
-- came to match: no operator action settled it. POST /refund-issues/:id/settle (refund-issue-settle.ts)
-- re-reads the refund from the processor and applies its final state as the processor records it, never
-- an amount an operator types: succeeded books the processor's amount (and currency), failed releases it.
-- pay_refunds: `requested_amount`, what we asked for, set only when the booked `amount` became the
-- processor's (null: `amount` is ours as asked); `currency`, set only when the processor's currency is
-- not the payment's (null: the payment's). Such a refund holds its requested amount against the payment
-- (refund-repo.ts HOLDS) and moves not the payment's `refunded` total (another currency), while its
-- journal and payments.events message are in its own currency.
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS requested_amount bigint;
ALTER TABLE pay_refunds ADD COLUMN IF NOT EXISTS currency text;
ALTER TABLE pay_refunds DROP CONSTRAINT IF EXISTS pay_refunds_currency_requested;
ALTER TABLE pay_refunds ADD CONSTRAINT pay_refunds_currency_requested CHECK (currency IS NULL OR requested_amount IS NOT NULL);
-- pay_refund_issues: how an operator's settle ended it (`settled_status`: the processor's final status
-- applied, succeeded or failed/canceled; null: closed with a note only, or resolved by the service).
ALTER TABLE pay_refund_issues ADD COLUMN IF NOT EXISTS settled_status text CHECK (settled_status IN ('succeeded', 'failed', 'canceled'));
