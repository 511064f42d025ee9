-- billing-service: the billing cycle renews every due subscription (and ends those of deleted
-- accounts) in one transaction, and charges the due invoices one after another. Before, one row
-- whose step threw (an invoice total beyond 2^53 minor units, any bug or bad row) rolled back every
-- renewal of the cycle, or stopped its charges, and the next cycle picked that row first again:
-- billing stopped for every user. Now each row's step runs under a savepoint (billing-service
-- isolation.ts); a row whose step failed is set aside until `cycle_retry_at` (a backoff doubled at
-- each consecutive failure, `cycle_failures`, at most a day), so the others keep their turn.

ALTER TABLE bil_subscriptions ADD COLUMN IF NOT EXISTS cycle_failures integer NOT NULL DEFAULT 0;
ALTER TABLE bil_subscriptions ADD COLUMN IF NOT EXISTS cycle_retry_at timestamptz;
ALTER TABLE bil_invoices ADD COLUMN IF NOT EXISTS cycle_failures integer NOT NULL DEFAULT 0;
ALTER TABLE bil_invoices ADD COLUMN IF NOT EXISTS cycle_retry_at timestamptz;
