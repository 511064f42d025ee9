-- billing-service: an invoice owing less than the card processor charges (MIN_CHARGE in
-- business/money.ts, e.g. 0.50 USD) is not charged. It is `carried`: its amount is owed on the
-- subscription (`carried`) and added, as a line of kind `carried`, to the next invoice. Before, it was
-- charged, refused by the processor (amount_too_small) every time, and dunning made the subscription
-- past_due, then unpaid: an upgrade a few hours before the period's end (a proration of a few cents)
-- stopped the service.

ALTER TABLE bil_subscriptions ADD COLUMN IF NOT EXISTS carried bigint NOT NULL DEFAULT 0 CHECK (carried >= 0);

ALTER TABLE bil_invoices DROP CONSTRAINT IF EXISTS bil_invoices_status_check;
ALTER TABLE bil_invoices ADD CONSTRAINT bil_invoices_status_check CHECK (status IN ('open', 'paid', 'void', 'uncollectible', 'carried'));

ALTER TABLE bil_invoice_lines DROP CONSTRAINT IF EXISTS bil_invoice_lines_kind_check;
ALTER TABLE bil_invoice_lines ADD CONSTRAINT bil_invoice_lines_kind_check CHECK (kind IN ('subscription', 'proration', 'usage', 'credit', 'carried'));
