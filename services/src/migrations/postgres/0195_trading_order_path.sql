-- Trading core order path (issue 10).

-- A cancel is a request until the trading-engine confirms it: `pending_cancel` between the two.
ALTER TABLE om_orders DROP CONSTRAINT IF EXISTS om_orders_status_check;
ALTER TABLE om_orders ADD CONSTRAINT om_orders_status_check
  CHECK (status IN ('new', 'accepted', 'partially_filled', 'pending_cancel', 'filled', 'cancelled', 'rejected', 'expired'));

-- Open orders of a user per symbol: their remaining quantity is exposure for the pre-trade check.
CREATE INDEX IF NOT EXISTS om_orders_open ON om_orders (user_id, symbol)
  WHERE status IN ('accepted', 'partially_filled', 'pending_cancel');
-- Filled quantity per user and symbol (the position as order-management knows it).
CREATE INDEX IF NOT EXISTS om_orders_user_symbol_filled ON om_orders (user_id, symbol) WHERE filled_quantity > 0;

-- Messages a consumer can never apply (malformed, invalid values, rejected by a constraint) are set
-- aside here with the reason, so the consumer keeps going instead of crash-looping on them.
-- Key and value are bytea: a poisoned message may hold bytes that text cannot (NUL, invalid UTF-8).
CREATE TABLE IF NOT EXISTS consumer_dead_letters (
  id             bigserial PRIMARY KEY,
  consumer_group text NOT NULL,
  topic          text NOT NULL,
  msg_partition  integer NOT NULL,
  msg_offset     bigint NOT NULL,
  msg_key        bytea,
  msg_value      bytea,
  reason         text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT consumer_dead_letters_once UNIQUE (consumer_group, topic, msg_partition, msg_offset)
);
