-- consumer_dead_letters (0195) kept a message's key and value but not its Kafka headers (the
-- producers send an event-id and the trace context, outboxRows.ts): a hand replay of a dead letter
-- went out without them. msg_headers is the list as received, in order: [{"name": ..., "value":
-- <the value's bytes in base64, or null>}, ...] (deadLetters.ts deadLetterHeaders). `json`, not
-- `jsonb`: its text is kept as written (the order of the keys, and a name holding U+0000, which jsonb
-- refuses: the dead letter could never be written, and its batch was retried for ever). NULL on the
-- rows written before this column.
ALTER TABLE consumer_dead_letters ADD COLUMN IF NOT EXISTS msg_headers json;
