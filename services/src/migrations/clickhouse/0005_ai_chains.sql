-- Decision chains of the AI tier (ai-chain-analytics): signal -> decision -> order -> fills.
-- One table per step, joined at query time (decision_id = the order's clientOrderId, order_id of
-- the fills). Wall-clock instants are UInt64 epoch milliseconds: 18.16 has no DateTime64.
-- At-least-once delivery: rows may repeat; ReplacingMergeTree folds duplicates at merge time and
-- every query first collapses each key with GROUP BY, so counts are exact before any merge.
CREATE TABLE IF NOT EXISTS ai_chain_decisions (
  decision_id    String,
  decided_ms     UInt64,
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
ORDER BY (strategy_id, decision_id);

CREATE TABLE IF NOT EXISTS ai_chain_orders (
  order_id     String,
  decision_id  String,
  day          Date,
  status       String,
  side         String,
  created_ms   UInt64,
  event_ms     UInt64,
  event_id     String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (decision_id, order_id, event_id);

CREATE TABLE IF NOT EXISTS ai_chain_fills (
  fill_id    String,
  order_id   String,
  day        Date,
  symbol     String,
  side       String,
  quantity   Float64,
  price      Float64,
  fee        Float64,
  market_ms  UInt64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (order_id, fill_id);
