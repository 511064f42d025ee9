-- payment-service: an idempotency key belongs to the namespace of who sent it, `client` (POST
-- /intents, a user through the gateway) or `internal` (POST /internal/intents: billing-service's
-- invoice charges). With one namespace per user, a user could take the key billing would use for an
-- invoice's next attempt (`invoice-<id>-<n>`, read off the user's own invoices) with a 1-cent
-- request of their own: billing's charge was then refused as IDEMPOTENCY_KEY_REUSED at every cycle,
-- and dunning never advanced (the invoice stayed open, the subscription past_due).
--
-- Rows written before: billing's charges are the ones keyed `invoice-...` that reference an invoice
-- (a client is refused such a reference); every other row is a client's. The old constraint was
-- stricter than the new one, so no existing pair of rows can violate it.

ALTER TABLE pay_intents ADD COLUMN IF NOT EXISTS origin text NOT NULL DEFAULT 'client' CHECK (origin IN ('client', 'internal'));
UPDATE pay_intents SET origin = 'internal' WHERE reference LIKE 'invoice:%' AND idempotency_key LIKE 'invoice-%';
-- Every insert names its origin (repo.ts insertIntent): a forgotten one must fail, not become a client's.
ALTER TABLE pay_intents ALTER COLUMN origin DROP DEFAULT;
ALTER TABLE pay_intents DROP CONSTRAINT IF EXISTS pay_intents_idempotency;
ALTER TABLE pay_intents ADD CONSTRAINT pay_intents_idempotency UNIQUE (user_id, origin, idempotency_key);
