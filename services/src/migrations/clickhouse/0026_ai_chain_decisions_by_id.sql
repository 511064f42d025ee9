-- ai-chain-analytics: the decisions keyed by decision id, what a chain (GET /chains/:decisionId) reads.
-- 0024's ai_chain_user_decisions is keyed by user, then decision instant: an admin's chain (no user)
-- read every user's decisions ever recorded to find one, and a trader's every decision of their own
-- (found by session 43's business-logic hunt, left; shown by session 45's with query_log's
-- SelectedMarks). Here one decision is a granule of each part.
--
-- Fed by a materialized view of every insert into ai_chain_user_decisions, whoever writes it (this
-- release's replicas and, during a rolling deploy, the release before's, which write that table too): the
-- decisions written before are carried over below. A decision's repeats (re-reads of the pull)
-- fold at merge time, and the read groups by decision id before that. Not partitioned: a read by the
-- key would select a granule of every month's part.
CREATE TABLE IF NOT EXISTS ai_chain_decisions_by_id (
  decision_id    String,
  user_id        String,
  decided_ms     UInt64,
  day            Date,
  strategy_id    String,
  model_version  String,
  symbol         String,
  action         String,
  probability_up Float64,
  decision_price Float64,
  quantity       Float64
) ENGINE = ReplacingMergeTree
ORDER BY decision_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS ai_chain_decisions_by_id_feed TO ai_chain_decisions_by_id AS
  SELECT decision_id, user_id, decided_ms, day, strategy_id, model_version, symbol, action, probability_up, decision_price, quantity
  FROM ai_chain_user_decisions;

-- The decisions written before (a decision written between the view's creation and this is in both: a repeat the reads fold).
INSERT INTO ai_chain_decisions_by_id (decision_id, user_id, decided_ms, day, strategy_id, model_version, symbol, action, probability_up, decision_price, quantity)
  SELECT decision_id, user_id, decided_ms, day, strategy_id, model_version, symbol, action, probability_up, decision_price, quantity
  FROM ai_chain_user_decisions;
