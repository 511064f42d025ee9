-- A Kafka consumer's dead letter (consumer_dead_letters, 0195) replayed by an operator once its cause
-- was fixed (database-service `POST /dead-letters/:id/replay`): when, and the offset the
-- message was given on its topic. A letter replays once: the route locks the row, sends, and sets
-- these in the same transaction. NULL: not replayed.
ALTER TABLE consumer_dead_letters ADD COLUMN IF NOT EXISTS replayed_at timestamptz;
ALTER TABLE consumer_dead_letters ADD COLUMN IF NOT EXISTS replayed_offset bigint;
