-- chain-debug: spans received over OTLP/HTTP and the exception events among them.
-- ClickHouse 18.16 (the local image) has no DateTime64, Map, TTL or LowCardinality: times are
-- microseconds in UInt64, attributes/events/links JSON text, retention by dropping daily partitions.
-- Exporters retry, so a span can arrive twice: queries deduplicate (LIMIT 1 BY span_id, uniqExact).
CREATE TABLE IF NOT EXISTS debug_spans (
  date            Date,
  trace_id        String,
  span_id         String,
  parent_span_id  String,
  service         String,
  name            String,
  kind            UInt8,
  start_us        UInt64,
  duration_us     UInt64,
  status_code     UInt8,
  status_message  String,
  http_status     UInt16,
  request_id      String,
  attributes      String,
  events          String,
  links           String,
  link_trace_ids  Array(String)
) ENGINE = MergeTree
PARTITION BY date
ORDER BY (trace_id, start_us, span_id);

CREATE TABLE IF NOT EXISTS debug_errors (
  date         Date,
  at           DateTime,
  at_us        UInt64,
  fingerprint  String,
  service      String,
  trace_id     String,
  span_id      String,
  event_index  UInt16,
  type         String,
  message      String,
  stack        String,
  span_name    String
) ENGINE = MergeTree
PARTITION BY date
ORDER BY (fingerprint, at_us, trace_id, span_id);
