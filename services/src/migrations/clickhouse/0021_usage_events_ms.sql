-- usage-monitoring: usage events to the millisecond. usage_events (0004) holds `at` in whole
-- seconds: billing's windows end at a plan change's instant, and every request in that second was
-- counted after it (priced on the new plan). 18.16 has no DateTime64: `at` keeps the second, `at_ms`
-- its millisecond (0-999). A table of its own rather than a column added to usage_events: 18.16 has
-- no ADD COLUMN IF NOT EXISTS, so that statement could not be re-run. New events are written here;
-- the rows of usage_events stay and are read in whole seconds, as before (store.ts).
CREATE TABLE IF NOT EXISTS usage_events_ms (
  event_id    String,
  at          DateTime,
  at_ms       UInt16,
  user_id     String,
  api_key_id  String,
  route       String,
  method      String,
  status      UInt16,
  latency_ms  Float64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (user_id, at, at_ms, event_id);
