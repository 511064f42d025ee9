-- ai-orchestrator: strategies can be deleted (soft: their decisions stay, ai-chain-analytics reads
-- them and they reference the strategy), created under an Idempotency-Key (unique per user, as
-- om_orders and pay_intents), and the final state of each order a strategy placed is kept on its
-- decision, so an evaluation asks order-management only about orders that can still change.
ALTER TABLE ai_strategies ADD COLUMN IF NOT EXISTS deleted_at timestamptz;
ALTER TABLE ai_strategies ADD COLUMN IF NOT EXISTS idempotency_key text;
ALTER TABLE ai_strategies ADD COLUMN IF NOT EXISTS request_hash text;
CREATE UNIQUE INDEX IF NOT EXISTS ai_strategies_idempotency ON ai_strategies (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- What the scheduler scans and the per-user limit counts: live strategies.
CREATE INDEX IF NOT EXISTS ai_strategies_live ON ai_strategies (user_id) WHERE deleted_at IS NULL;

-- The order's terminal status once order-management reported one, with what it contributed to the
-- strategy's book: its signed filled quantity (buy +, sell -) and its cash flow (fills and fees).
ALTER TABLE ai_decisions ADD COLUMN IF NOT EXISTS order_final_status text;
ALTER TABLE ai_decisions ADD COLUMN IF NOT EXISTS order_filled_signed numeric;
ALTER TABLE ai_decisions ADD COLUMN IF NOT EXISTS order_cash_flow numeric;
CREATE INDEX IF NOT EXISTS ai_decisions_open_orders ON ai_decisions (strategy_id) WHERE order_id IS NOT NULL AND order_final_status IS NULL;
-- What an evaluation sums: the settled orders' contributions per symbol.
CREATE INDEX IF NOT EXISTS ai_decisions_settled_orders ON ai_decisions (strategy_id, symbol) INCLUDE (order_filled_signed, order_cash_flow) WHERE order_final_status IS NOT NULL;
