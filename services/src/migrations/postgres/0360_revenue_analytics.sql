-- revenue-analytics (ra_*): the billing and payment events it consumed, one row per event id (a
-- redelivered event is a no-op). MRR history is the per-subscription MRR each billing event
-- carries; amounts are BIGINT minor units.

CREATE TABLE IF NOT EXISTS ra_mrr_changes (
  event_id         text PRIMARY KEY,
  -- Arrival order, to order two events of one subscription with the same timestamp.
  seq              bigserial NOT NULL,
  subscription_id  text NOT NULL,
  user_id          text NOT NULL,
  plan_id          text NOT NULL,
  status           text NOT NULL,
  currency         text NOT NULL,
  mrr              bigint NOT NULL CHECK (mrr >= 0),
  at               timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ra_mrr_changes_sub_at ON ra_mrr_changes (subscription_id, at DESC, seq DESC);
CREATE INDEX IF NOT EXISTS ra_mrr_changes_at ON ra_mrr_changes (at);

CREATE TABLE IF NOT EXISTS ra_payments (
  event_id   text PRIMARY KEY,
  type       text NOT NULL CHECK (type IN ('payment.succeeded', 'payment.failed', 'payment.refunded')),
  intent_id  text NOT NULL,
  user_id    text NOT NULL,
  currency   text NOT NULL,
  -- succeeded: the amount collected; refunded: the refund's amount; failed: the amount attempted.
  amount     bigint NOT NULL CHECK (amount >= 0),
  at         timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ra_payments_at ON ra_payments (at);
