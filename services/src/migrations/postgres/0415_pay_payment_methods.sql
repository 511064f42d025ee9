-- payment-service: a card is charged only for the user it is saved to. Before, POST /intents and
-- billing's subscriptions took any `pm_...` string and charged it without a processor customer, so
-- a user holding another user's card token (or one never saved by anyone) had it charged as theirs.
-- Now a user saves a token first (POST /payment-methods): it is attached to that user's processor
-- customer (one per user, pay_customers), which the processor refuses for a card already attached
-- to someone else, and recorded here; charges name the customer and refuse unsaved methods.

-- user ids in their one spelling, the lower-case UUID (the CHECK 0400 gives every user_id column).
CREATE TABLE IF NOT EXISTS pay_customers (
  user_id      text PRIMARY KEY
    CONSTRAINT pay_customers_user_id_canonical CHECK (user_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' OR user_id !~ '[A-F]'),
  customer_id  text NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS pay_payment_methods (
  payment_method text PRIMARY KEY,
  user_id        text NOT NULL REFERENCES pay_customers (user_id)
    CONSTRAINT pay_payment_methods_user_id_canonical CHECK (user_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' OR user_id !~ '[A-F]'),
  brand          text,
  last4          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  -- Removed by its owner (detached at the processor): never charged again, kept for the record.
  removed_at     timestamptz
);
CREATE INDEX IF NOT EXISTS pay_payment_methods_user ON pay_payment_methods (user_id, created_at DESC);
