-- ai-chain-analytics: the decisions keyed by instant, what every user's summary reads (an admin's
-- GET /summary/all, and the /metrics gauges over CHAIN_LOOKBACK_HOURS at each scrape). 0024's
-- ai_chain_user_decisions is keyed by user first: without a user, a summary read every user's decisions
-- of the months its range spans, an hour's summary a month of them (found by session 43's
-- business-logic hunt, left; shown by session 45's with query_log's SelectedMarks). Here a range is the
-- granules of its instants.
--
-- Fed, carried over and folded as 0026's table is (a view of every insert into ai_chain_user_decisions).
CREATE TABLE IF NOT EXISTS ai_chain_decisions_by_time (
  decided_ms     UInt64,
  decision_id    String,
  day            Date,
  user_id        String,
  strategy_id    String,
  model_version  String,
  symbol         String,
  action         String,
  probability_up Float64,
  decision_price Float64,
  quantity       Float64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (decided_ms, decision_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS ai_chain_decisions_by_time_feed TO ai_chain_decisions_by_time AS
  SELECT decided_ms, decision_id, day, user_id, strategy_id, model_version, symbol, action, probability_up, decision_price, quantity
  FROM ai_chain_user_decisions;

INSERT INTO ai_chain_decisions_by_time (decided_ms, decision_id, day, user_id, strategy_id, model_version, symbol, action, probability_up, decision_price, quantity)
  SELECT decided_ms, decision_id, day, user_id, strategy_id, model_version, symbol, action, probability_up, decision_price, quantity
  FROM ai_chain_user_decisions;
