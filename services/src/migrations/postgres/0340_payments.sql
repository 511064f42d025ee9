-- payment-service (pay_*): payment intents, refunds, a double-entry ledger, processed webhook
-- events and the transactional outbox. Amounts are BIGINT minor units (cents), never floats.
-- Idempotent (IF NOT EXISTS / OR REPLACE) so it can be applied to an existing database.

CREATE TABLE IF NOT EXISTS pay_intents (
  intent_id            uuid PRIMARY KEY,
  user_id              text NOT NULL,
  idempotency_key      text NOT NULL,
  request_hash         text NOT NULL,
  amount               bigint NOT NULL CHECK (amount > 0),
  currency             text NOT NULL,
  payment_method       text NOT NULL,
  description          text,
  reference            text,
  status               text NOT NULL CHECK (status IN ('created', 'processing', 'succeeded', 'failed', 'canceled')),
  processor            text NOT NULL,
  processor_intent_id  text UNIQUE,
  failure_code         text,
  failure_message      text,
  refunded             bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pay_intents_idempotency UNIQUE (user_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS pay_intents_open ON pay_intents (created_at) WHERE status IN ('created', 'processing');
CREATE INDEX IF NOT EXISTS pay_intents_user ON pay_intents (user_id, created_at DESC);

CREATE TABLE IF NOT EXISTS pay_refunds (
  refund_id            uuid PRIMARY KEY,
  intent_id            uuid NOT NULL REFERENCES pay_intents (intent_id),
  idempotency_key      text NOT NULL,
  amount               bigint NOT NULL CHECK (amount > 0),
  reason               text,
  processor_refund_id  text UNIQUE,
  status               text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  created_at           timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pay_refunds_idempotency UNIQUE (intent_id, idempotency_key)
);

-- One journal per business event (`payment:<intent>`, `refund:<refund>`): the primary key makes
-- posting idempotent, so a webhook, a retry and reconciliation settling the same payment post once.
CREATE TABLE IF NOT EXISTS pay_journals (
  journal_id  text PRIMARY KEY,
  kind        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS pay_ledger_entries (
  id          bigserial PRIMARY KEY,
  journal_id  text NOT NULL REFERENCES pay_journals (journal_id),
  account     text NOT NULL,
  currency    text NOT NULL,
  amount      bigint NOT NULL CHECK (amount <> 0),
  memo        text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pay_ledger_entries_account ON pay_ledger_entries (account, currency);
CREATE INDEX IF NOT EXISTS pay_ledger_entries_journal ON pay_ledger_entries (journal_id);

-- The ledger is append-only: corrections are new journals.
CREATE OR REPLACE FUNCTION pay_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'pay_ledger_entries is append-only (% refused)', TG_OP;
END $$;
DROP TRIGGER IF EXISTS pay_ledger_no_update ON pay_ledger_entries;
CREATE TRIGGER pay_ledger_no_update BEFORE UPDATE OR DELETE ON pay_ledger_entries
  FOR EACH STATEMENT EXECUTE FUNCTION pay_ledger_append_only();

-- Every journal balances per currency at commit (deferred: its entries are inserted one by one).
CREATE OR REPLACE FUNCTION pay_ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE unbalanced text;
BEGIN
  SELECT currency INTO unbalanced FROM pay_ledger_entries
   WHERE journal_id = NEW.journal_id GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
  IF unbalanced IS NOT NULL THEN
    RAISE EXCEPTION 'journal % does not balance in %', NEW.journal_id, unbalanced;
  END IF;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS pay_ledger_balanced ON pay_ledger_entries;
CREATE CONSTRAINT TRIGGER pay_ledger_balanced AFTER INSERT ON pay_ledger_entries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pay_ledger_check_balanced();

-- Processor webhook events already handled (replay protection beyond the signature's timestamp).
CREATE TABLE IF NOT EXISTS pay_webhook_events (
  event_id     text PRIMARY KEY,
  type         text NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS pay_outbox (
  id         bigserial PRIMARY KEY,
  event_id   text NOT NULL UNIQUE,
  topic      text NOT NULL,
  msg_key    text NOT NULL,
  payload    jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at    timestamptz
);
CREATE INDEX IF NOT EXISTS pay_outbox_unsent ON pay_outbox (id) WHERE sent_at IS NULL;
