-- ai-orchestrator: finding the orders of decisions whose outcome was never recorded, and a backoff
-- for strategies whose evaluation fails.

-- A decision to buy or sell is recorded before its order is submitted and gets its outcome (order
-- id, risk answer) after: one without an outcome is a submit the orchestrator did not see end (a
-- crash, a timeout). Every evaluation and DELETE looks for them.
CREATE INDEX IF NOT EXISTS ai_decisions_unrecorded ON ai_decisions (strategy_id)
  WHERE action IN ('buy', 'sell') AND order_id IS NULL AND risk IS NULL;
-- order-management's lookup (GET /?idempotencyKey=) reads the unique index om_orders_idempotency
-- (user_id, idempotency_key): no index more on the order path's hottest table.

-- Evaluations that failed in a row (0 after a success), when the last one failed and why, and the
-- earliest the scheduler starts the strategy again (NULL: no failure since the last success).
ALTER TABLE ai_strategies ADD COLUMN IF NOT EXISTS eval_failures integer NOT NULL DEFAULT 0;
ALTER TABLE ai_strategies ADD COLUMN IF NOT EXISTS eval_failed_at timestamptz;
ALTER TABLE ai_strategies ADD COLUMN IF NOT EXISTS eval_error text;
ALTER TABLE ai_strategies ADD COLUMN IF NOT EXISTS eval_retry_at timestamptz;
