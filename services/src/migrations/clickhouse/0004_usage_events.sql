-- One row per API request through the gateway (usage-monitoring consumes platform.usage).
-- At-least-once delivery: rows may repeat; ReplacingMergeTree folds duplicates at merge time and
-- the queries count uniqExact(event_id), so counts are exact before any merge.
CREATE TABLE IF NOT EXISTS usage_events (
  event_id    String,
  at          DateTime,
  user_id     String,
  api_key_id  String,
  route       String,
  method      String,
  status      UInt16,
  latency_ms  Float64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (user_id, at, event_id);
