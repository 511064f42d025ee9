-- consumer_dead_letters (0007) kept a message's key and value but not its Kafka headers (the
-- producers send an event-id and the trace context): msg_headers is the list as received, in order,
-- as JSON text, the same as PostgreSQL's column (migrations/postgres/0496): [{"name": ...,
-- "value": <the value's bytes in base64, or null>}, ...]. '' on the rows written before this column.
ALTER TABLE consumer_dead_letters ADD COLUMN IF NOT EXISTS msg_headers String DEFAULT '';
