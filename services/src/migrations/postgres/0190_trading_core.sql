-- Trading core (issue 5): order-management (om_*), trading-engine (te_*), portfolio-manager (pm_*),
-- compliance-monitor (cm_*). Decimal values are NUMERIC (exact; pg returns them as strings).
-- Idempotent (IF NOT EXISTS) so it can be applied to an existing database.

-- order-management ------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS om_orders (
  order_id         uuid PRIMARY KEY,
  user_id          text NOT NULL,
  client_order_id  text NOT NULL,
  idempotency_key  text,
  request_hash     text NOT NULL,
  symbol           text NOT NULL,
  side             text NOT NULL CHECK (side IN ('buy', 'sell')),
  type             text NOT NULL CHECK (type IN ('market', 'limit')),
  time_in_force    text NOT NULL DEFAULT 'GTC' CHECK (time_in_force IN ('GTC', 'IOC')),
  quantity         numeric NOT NULL CHECK (quantity > 0),
  limit_price      numeric CHECK (limit_price > 0),
  status           text NOT NULL CHECK (status IN ('new', 'accepted', 'partially_filled', 'filled', 'cancelled', 'rejected', 'expired')),
  filled_quantity  numeric NOT NULL DEFAULT 0,
  avg_fill_price   numeric,
  fees             numeric NOT NULL DEFAULT 0,
  reject_reason    text,
  reject_message   text,
  last_price       numeric,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT om_orders_idempotency UNIQUE (user_id, idempotency_key),
  CONSTRAINT om_orders_limit_price CHECK ((type = 'limit') = (limit_price IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS om_orders_user_created ON om_orders (user_id, created_at DESC);

-- Fills applied to orders (dedupe by fill id).
CREATE TABLE IF NOT EXISTS om_order_fills (
  fill_id    text PRIMARY KEY,
  order_id   uuid NOT NULL REFERENCES om_orders (order_id),
  quantity   numeric NOT NULL,
  price      numeric NOT NULL,
  fee        numeric NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: written in the same transaction as the state change, relayed to Kafka.
CREATE TABLE IF NOT EXISTS om_outbox (
  id         bigserial PRIMARY KEY,
  event_id   text NOT NULL UNIQUE,
  topic      text NOT NULL,
  msg_key    text NOT NULL,
  payload    jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at    timestamptz
);
CREATE INDEX IF NOT EXISTS om_outbox_unsent ON om_outbox (id) WHERE sent_at IS NULL;

-- trading-engine --------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS te_orders (
  order_id   uuid PRIMARY KEY,
  payload    jsonb NOT NULL,
  status     text NOT NULL,
  remaining  numeric NOT NULL,
  fill_seq   integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS te_orders_resting ON te_orders (created_at) WHERE status = 'resting';

CREATE TABLE IF NOT EXISTS te_fills (
  fill_id    text PRIMARY KEY,
  order_id   uuid NOT NULL,
  payload    jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS te_last_bar (
  symbol    text PRIMARY KEY,
  open_time bigint NOT NULL,
  bar       jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS te_outbox (
  id         bigserial PRIMARY KEY,
  event_id   text NOT NULL UNIQUE,
  topic      text NOT NULL,
  msg_key    text NOT NULL,
  payload    jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at    timestamptz
);
CREATE INDEX IF NOT EXISTS te_outbox_unsent ON te_outbox (id) WHERE sent_at IS NULL;

-- portfolio-manager -----------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS pm_accounts (
  user_id    text PRIMARY KEY,
  cash       numeric NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS pm_positions (
  user_id      text NOT NULL,
  symbol       text NOT NULL,
  quantity     numeric NOT NULL DEFAULT 0,
  avg_price    numeric NOT NULL DEFAULT 0,
  realized_pnl numeric NOT NULL DEFAULT 0,
  fees         numeric NOT NULL DEFAULT 0,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, symbol)
);

-- One row per applied fill: the unique key makes applying a fill idempotent.
CREATE TABLE IF NOT EXISTS pm_fills (
  fill_id      text PRIMARY KEY,
  order_id     text NOT NULL,
  user_id      text NOT NULL,
  symbol       text NOT NULL,
  side         text NOT NULL,
  quantity     numeric NOT NULL,
  price        numeric NOT NULL,
  fee          numeric NOT NULL,
  realized_pnl numeric NOT NULL,
  cash_delta   numeric NOT NULL,
  fill_ts      timestamptz NOT NULL,
  applied_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pm_fills_user_ts ON pm_fills (user_id, fill_ts);

-- compliance-monitor: append-only audit trail ---------------------------------------------------
CREATE TABLE IF NOT EXISTS cm_audit (
  id          bigserial PRIMARY KEY,
  event_id    text NOT NULL UNIQUE,
  source      text NOT NULL,
  kind        text NOT NULL,
  user_id     text NOT NULL,
  symbol      text NOT NULL,
  payload     jsonb NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS cm_alerts (
  alert_id  text PRIMARY KEY,
  rule      text NOT NULL,
  user_id   text NOT NULL,
  symbol    text NOT NULL,
  severity  text NOT NULL,
  message   text NOT NULL,
  evidence  jsonb NOT NULL,
  event_ts  timestamptz NOT NULL,
  raised_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION cm_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'compliance audit trail is append-only (% on %)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS cm_audit_append_only ON cm_audit;
CREATE TRIGGER cm_audit_append_only BEFORE UPDATE OR DELETE ON cm_audit FOR EACH ROW EXECUTE FUNCTION cm_forbid_change();
DROP TRIGGER IF EXISTS cm_audit_no_truncate ON cm_audit;
CREATE TRIGGER cm_audit_no_truncate BEFORE TRUNCATE ON cm_audit FOR EACH STATEMENT EXECUTE FUNCTION cm_forbid_change();
DROP TRIGGER IF EXISTS cm_alerts_append_only ON cm_alerts;
CREATE TRIGGER cm_alerts_append_only BEFORE UPDATE OR DELETE ON cm_alerts FOR EACH ROW EXECUTE FUNCTION cm_forbid_change();
DROP TRIGGER IF EXISTS cm_alerts_no_truncate ON cm_alerts;
CREATE TRIGGER cm_alerts_no_truncate BEFORE TRUNCATE ON cm_alerts FOR EACH STATEMENT EXECUTE FUNCTION cm_forbid_change();
