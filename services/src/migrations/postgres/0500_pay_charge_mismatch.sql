-- payment-service: a charge's own answer from the processor (the PaymentIntent it created for our
-- request) was booked by its status whatever amount or currency it carried: a PaymentIntent of 10.00
-- answered for our 50.00 was booked succeeded at 50.00, and payment.succeeded paid billing's invoice.
-- It is now compared with our request first (payments.ts chargeLocked): one of another amount or
-- currency is not booked (the payment stays open, its processor id recorded, so reconciliation and the
-- webhooks find it and report the same mismatch), the caller is answered 502 PROCESSOR_MISMATCH, and
-- an operator's issue is recorded here once, kind `charge_mismatch` (refund_id null,
-- `processor_intent_id` the processor's PaymentIntent, `processor_amount` / `processor_currency` its).
ALTER TABLE pay_refund_issues DROP CONSTRAINT IF EXISTS pay_refund_issues_kind_check;
ALTER TABLE pay_refund_issues ADD CONSTRAINT pay_refund_issues_kind_check
  CHECK (kind IN ('exceeds_payment', 'not_found', 'amount_mismatch', 'currency_mismatch', 'charge_mismatch'));
ALTER TABLE pay_refund_issues ADD COLUMN IF NOT EXISTS processor_intent_id text;
