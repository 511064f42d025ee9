-- billing-service (bil_*): plans, subscriptions, invoices with line items, dunning state, consumed
-- payment events and the transactional outbox. Amounts are BIGINT minor units, never floats.

CREATE TABLE IF NOT EXISTS bil_plans (
  plan_id             text PRIMARY KEY,
  name                text NOT NULL,
  currency            text NOT NULL,
  amount              bigint NOT NULL CHECK (amount >= 0),
  billing_interval    text NOT NULL CHECK (billing_interval IN ('month', 'year')),
  trial_days          integer NOT NULL DEFAULT 0 CHECK (trial_days BETWEEN 0 AND 365),
  usage_metric        text CHECK (usage_metric IN ('api_requests')),
  usage_included      bigint CHECK (usage_included >= 0),
  usage_block_size    bigint CHECK (usage_block_size > 0),
  usage_block_amount  bigint CHECK (usage_block_amount >= 0),
  active              boolean NOT NULL DEFAULT true,
  created_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT bil_plans_usage_complete CHECK (
    (usage_metric IS NULL) = (usage_included IS NULL) AND (usage_metric IS NULL) = (usage_block_size IS NULL) AND (usage_metric IS NULL) = (usage_block_amount IS NULL))
);

CREATE TABLE IF NOT EXISTS bil_subscriptions (
  subscription_id       uuid PRIMARY KEY,
  user_id               text NOT NULL,
  plan_id               text NOT NULL REFERENCES bil_plans (plan_id),
  status                text NOT NULL CHECK (status IN ('incomplete', 'trialing', 'active', 'past_due', 'unpaid', 'canceled')),
  anchor                timestamptz NOT NULL,
  period_start          timestamptz NOT NULL,
  period_end            timestamptz NOT NULL,
  trial_end             timestamptz,
  cancel_at_period_end  boolean NOT NULL DEFAULT false,
  credit_balance        bigint NOT NULL DEFAULT 0 CHECK (credit_balance >= 0),
  -- The processor's token for the customer's saved card (`pm_...`); never card data.
  payment_method        text NOT NULL,
  canceled_at           timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  CHECK (period_end > period_start)
);
-- One live subscription per user.
CREATE UNIQUE INDEX IF NOT EXISTS bil_subscriptions_one_live ON bil_subscriptions (user_id) WHERE status <> 'canceled';
CREATE INDEX IF NOT EXISTS bil_subscriptions_due ON bil_subscriptions (period_end) WHERE status NOT IN ('canceled', 'unpaid');

CREATE TABLE IF NOT EXISTS bil_invoices (
  invoice_id        uuid PRIMARY KEY,
  subscription_id   uuid NOT NULL REFERENCES bil_subscriptions (subscription_id),
  user_id           text NOT NULL,
  currency          text NOT NULL,
  status            text NOT NULL CHECK (status IN ('open', 'paid', 'void', 'uncollectible')),
  subtotal          bigint NOT NULL,
  credit_applied    bigint NOT NULL DEFAULT 0 CHECK (credit_applied >= 0),
  amount_due        bigint NOT NULL CHECK (amount_due >= 0),
  attempts          integer NOT NULL DEFAULT 0,
  next_attempt_at   timestamptz,
  last_payment_id   uuid,
  paid_at           timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS bil_invoices_user ON bil_invoices (user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS bil_invoices_retry ON bil_invoices (next_attempt_at) WHERE status = 'open';

CREATE TABLE IF NOT EXISTS bil_invoice_lines (
  invoice_id    uuid NOT NULL REFERENCES bil_invoices (invoice_id),
  line_no       integer NOT NULL,
  kind          text NOT NULL CHECK (kind IN ('subscription', 'proration', 'usage', 'credit')),
  description   text NOT NULL,
  quantity      bigint NOT NULL,
  amount        bigint NOT NULL,
  period_start  timestamptz NOT NULL,
  period_end    timestamptz NOT NULL,
  PRIMARY KEY (invoice_id, line_no)
);

-- payments.events already applied (at-least-once delivery).
CREATE TABLE IF NOT EXISTS bil_processed_events (
  event_id    text PRIMARY KEY,
  applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS bil_outbox (
  id         bigserial PRIMARY KEY,
  event_id   text NOT NULL UNIQUE,
  topic      text NOT NULL,
  msg_key    text NOT NULL,
  payload    jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at    timestamptz
);
CREATE INDEX IF NOT EXISTS bil_outbox_unsent ON bil_outbox (id) WHERE sent_at IS NULL;
