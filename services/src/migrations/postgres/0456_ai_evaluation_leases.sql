-- ai-orchestrator: one row per running evaluation of a strategy, in whichever replica runs it
-- (ai-orchestrator/lease.ts). A disable or DELETE answers once no live lease of the strategy is left:
-- an evaluation that read the strategy enabled may be submitting its order, and no order may be
-- placed after the answer. The process's own map of running evaluations saw only that process's.
-- A lease is taken (only while the strategy is enabled and not deleted) before each read of the
-- strategy's lifecycle and dropped when the evaluation ends; one whose order submit got no answer is
-- kept to its expiry, past which that order can no longer commit. A crashed replica's lease expires
-- by itself (expires_at) and is deleted by a later evaluation of the strategy.
CREATE TABLE IF NOT EXISTS ai_evaluation_leases (
  token       uuid PRIMARY KEY,
  strategy_id uuid NOT NULL REFERENCES ai_strategies (strategy_id) ON DELETE CASCADE,
  expires_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ai_evaluation_leases_strategy ON ai_evaluation_leases (strategy_id, expires_at);
