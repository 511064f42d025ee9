-- billing-service: an invoice whose charge payment-service holds for an operator (the card processor
-- answered it with another amount or currency than asked: payment-service's charge_mismatch issue,
-- migration 0500). Its answer was a 502 and the cycle retried the same charge on every pass, for as
-- long as the hold lasted; now payment-service answers the retry 409 CHARGE_HELD_FOR_REVIEW and billing
-- records the hold here (invoicing.ts charge): the cycle no longer charges the invoice (cycle-queries.ts
-- dueInvoices), not with this key nor with another (which would charge the card a second time). The
-- payment's outcome event moves it on (payment.succeeded pays it; payment.failed, the charge canceled at
-- the processor, counts the attempt and clears this, so dunning goes on).
ALTER TABLE bil_invoices ADD COLUMN IF NOT EXISTS charge_held_at timestamptz;
