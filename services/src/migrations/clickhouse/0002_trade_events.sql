-- Executions and order events for analytics (source of truth stays in PostgreSQL).
CREATE TABLE IF NOT EXISTS trade_events (
  event_time  DateTime,
  event_ms    UInt16,
  event_type  String,
  order_id    String,
  user_id     String,
  symbol      String,
  side        String,
  quantity    Float64,
  price       Float64,
  fee         Float64,
  mode        String
) ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (symbol, event_time, order_id);

CREATE TABLE IF NOT EXISTS service_latency (
  at          DateTime,
  service     String,
  datastore   String,
  status      String,
  latency_ms  Float64
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(at)
ORDER BY (service, datastore, at);
