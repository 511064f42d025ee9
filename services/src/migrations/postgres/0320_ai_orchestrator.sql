-- ai-orchestrator (issue 11): per-user strategies and every decision with the inputs that made it
-- (model version, features, prediction, similar regimes, trading state, risk answer, order id).
CREATE TABLE IF NOT EXISTS ai_strategies (
  strategy_id          uuid PRIMARY KEY,
  user_id              text NOT NULL,
  name                 text NOT NULL,
  symbols              text[] NOT NULL,
  buy_above            double precision NOT NULL CHECK (buy_above > 0 AND buy_above < 1),
  sell_below           double precision NOT NULL CHECK (sell_below > 0 AND sell_below < 1),
  order_quantity       numeric NOT NULL CHECK (order_quantity > 0),
  max_position         numeric NOT NULL CHECK (max_position > 0),
  stop_loss            numeric NOT NULL CHECK (stop_loss > 0),
  min_regime_agreement double precision NOT NULL DEFAULT 0 CHECK (min_regime_agreement >= 0 AND min_regime_agreement <= 1),
  every_seconds        integer NOT NULL CHECK (every_seconds >= 5),
  enabled              boolean NOT NULL DEFAULT false,
  status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'stopped')),
  stopped_reason       text,
  last_evaluated_at    timestamptz,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  CHECK (sell_below < buy_above)
);
CREATE INDEX IF NOT EXISTS ai_strategies_user ON ai_strategies (user_id, created_at DESC);

CREATE TABLE IF NOT EXISTS ai_decisions (
  decision_id     uuid PRIMARY KEY,
  strategy_id     uuid NOT NULL REFERENCES ai_strategies (strategy_id),
  user_id         text NOT NULL,
  symbol          text NOT NULL,
  decided_at      timestamptz NOT NULL DEFAULT now(),
  model_version   text,
  probability_up  double precision,
  bar_time        timestamptz,
  decision_price  double precision,
  features        jsonb,
  regimes         jsonb NOT NULL DEFAULT '[]',
  trading_state   text NOT NULL,
  position_before numeric NOT NULL,
  action          text NOT NULL CHECK (action IN ('buy', 'sell', 'hold', 'skip')),
  quantity        numeric NOT NULL DEFAULT 0,
  reason          text NOT NULL,
  order_id        uuid,
  risk            jsonb,
  error           text
);
CREATE INDEX IF NOT EXISTS ai_decisions_strategy ON ai_decisions (strategy_id, decided_at DESC);
CREATE INDEX IF NOT EXISTS ai_decisions_order ON ai_decisions (order_id) WHERE order_id IS NOT NULL;
