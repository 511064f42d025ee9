-- performance-analytics: fills and the order -> strategy map from the trading topics, and the
-- daily rollup (equity, return, exposure, drawdown per user and strategy) its scheduled job writes.
-- ReplacingMergeTree folds redelivered rows at merge time; reads use FINAL so figures are exact
-- before any merge. Not a materialized view: an MV fires per inserted block, before
-- deduplication, so a redelivered fill would be summed twice, and the curve needs running
-- positions across days, which 18.16 cannot express (no window functions before 21.x).
CREATE TABLE IF NOT EXISTS pa_fills (
  fill_id      String,
  order_id     String,
  user_id      String,
  symbol       String,
  side         String,
  quantity     Float64,
  price        Float64,
  fee          Float64,
  ts_ms        UInt64,
  at           DateTime,
  inserted_at  DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(at)
ORDER BY (user_id, fill_id);

CREATE TABLE IF NOT EXISTS pa_order_strategies (
  order_id     String,
  user_id      String,
  strategy     String,
  inserted_at  DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(inserted_at)
ORDER BY order_id;

CREATE TABLE IF NOT EXISTS pa_daily (
  user_id       String,
  strategy      String,
  day           Date,
  equity        Float64,
  pnl           Float64,
  daily_return  Float64,
  exposure      Float64,
  drawdown      Float64,
  fees          Float64,
  trades        UInt32,
  version       UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, strategy, day);
