-- Messages a consumer without PostgreSQL (usage-monitoring, performance-analytics,
-- ai-chain-analytics) can never apply, set aside with the reason; the other consumers use
-- PostgreSQL's consumer_dead_letters (migrations/postgres/0195). Key and value are base64: a
-- poisoned message may hold any bytes. A redelivered message folds into one row at merge time.
CREATE TABLE IF NOT EXISTS consumer_dead_letters (
  consumer_group   String,
  topic            String,
  msg_partition    Int32,
  msg_offset       Int64,
  msg_key_base64   String,
  msg_value_base64 String,
  reason           String,
  created_at       DateTime
) ENGINE = ReplacingMergeTree
ORDER BY (consumer_group, topic, msg_partition, msg_offset);
