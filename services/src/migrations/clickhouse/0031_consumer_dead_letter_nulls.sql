-- consumer_dead_letters (0007) keeps a message's key and value as base64 text, '' for a key or value
-- the message did not have (kafkajs hands over null) as for an empty one: which of the two was sent
-- could not be told, nor a replay (PostgreSQL's bytea columns keep NULL). 1: the message had none; 0:
-- it had one (maybe empty). Rows written before this column, or by a release before it during a
-- rollout: a value is absent exactly when the reason says so (NO_VALUE, kafka.ts: nothing else sets a
-- message without a value aside), so msg_value_null is told from the reason; an empty key cannot be
-- told, NULL (not known).
ALTER TABLE consumer_dead_letters ADD COLUMN IF NOT EXISTS msg_key_null Nullable(UInt8) DEFAULT if(msg_key_base64 = '', NULL, 0);
ALTER TABLE consumer_dead_letters ADD COLUMN IF NOT EXISTS msg_value_null UInt8 DEFAULT msg_value_base64 = '' AND reason LIKE 'no value (%';
