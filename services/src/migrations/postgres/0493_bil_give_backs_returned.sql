-- billing-service: a give-back whose refund payment-service booked at another amount than billing asked
-- (an operator's settle from the processor's record, POST /refund-issues/:id/settle: `payment.refunded`
-- carries the processor's amount) was taken for returned in full, and when that refund later failed
-- (`payment.refund_reversed`) the whole amount billing asked was credited, not what had gone back.
-- `returned_amount`: what `payment.refunded` said went back, in the invoice's currency (null: as asked,
-- `amount`, or told in another currency, which billing cannot compare). The shortfall (`amount` less
-- what went back) is credit when the refund succeeds; what went back is credit when it fails after:
-- in all, never more than `amount` (give-backs.ts).
ALTER TABLE bil_give_backs ADD COLUMN IF NOT EXISTS returned_amount bigint CHECK (returned_amount >= 0);
