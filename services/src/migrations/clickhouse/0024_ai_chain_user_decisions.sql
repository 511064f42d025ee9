-- ai-chain-analytics: the decisions keyed by user. 0005's ai_chain_decisions is keyed by strategy and
-- decision, so a trader's summary (GET /api/ai-chains/summary, the caller's decisions of a range) and
-- chain (GET /chains/:decisionId) read every user's decisions of the months the range spans: one
-- trader's request cost the reads of all of them (found by session 42's business-logic hunt). Here a
-- user's decisions of a range are a few granules: the key is the user, then the decision instant.
-- A decision's decided_ms never changes (ai-orchestrator stamps it once), so repeats of a decision
-- (re-reads of the pull) fold at merge time, and the reads group by decision id before that.
--
-- The rolling deploy's two writers: every replica pulls every decision from ai-orchestrator (a pull,
-- not a consumer group split between replicas), so a replica of this release fills this table with
-- every decision from CHAIN_LOOKBACK_HOURS before its start on, whatever the older replicas still
-- running write; the rows before are carried over below. A replica of this release also keeps
-- writing ai_chain_decisions, which the release before reads (its replicas during the rollout, and a
-- rollback); this release no longer reads it.
-- A table of its own: 18.16 cannot change a table's ORDER BY.
CREATE TABLE IF NOT EXISTS ai_chain_user_decisions (
  user_id        String,
  decided_ms     UInt64,
  decision_id    String,
  day            Date,
  strategy_id    String,
  model_version  String,
  symbol         String,
  action         String,
  probability_up Float64,
  decision_price Float64,
  quantity       Float64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, decided_ms, decision_id);

-- The decisions recorded before. Re-running this after an interruption only repeats rows the reads fold.
INSERT INTO ai_chain_user_decisions (user_id, decided_ms, decision_id, day, strategy_id, model_version, symbol, action, probability_up, decision_price, quantity)
  SELECT user_id, decided_ms, decision_id, day, strategy_id, model_version, symbol, action, probability_up, decision_price, quantity
  FROM ai_chain_decisions;
