-- billing-service: a payment billing gives back (its invoice void, or paid by another payment:
-- give-backs.ts) was taken for refunded as soon as payment-service answered, though a refund answered
-- `pending` has not gone back yet (and may still fail). Each give-back is now recorded with its refund's
-- status: `pending` until `payment.refunded` (succeeded) or `payment.refund_failed` /
-- `payment.refund_reversed` (failed: its amount is credit on the subscription) arrives. One per
-- invoice and payment, as the refund's idempotency key (`invoice-refund-<invoice>-<intent>`).
CREATE TABLE IF NOT EXISTS bil_give_backs (
  invoice_id       uuid NOT NULL REFERENCES bil_invoices (invoice_id),
  intent_id        uuid NOT NULL,
  refund_id        uuid UNIQUE,
  amount           bigint NOT NULL CHECK (amount > 0),
  status           text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (invoice_id, intent_id)
);
