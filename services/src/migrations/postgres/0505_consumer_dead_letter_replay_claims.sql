-- A replay of a Kafka consumer's dead letter (database-service `POST /dead-letters/:id/replay`) held the
-- row locked in a transaction while it sent the message to Kafka (0489): a topic that was deleted kept
-- the transaction, its connection and the row's lock open for the minutes the producer retried. Now a
-- replay claims the letter first (replay_claim: a random id of that replay, replay_claimed_at: when;
-- committed at once), sends with the producer's own deadline outside any transaction, then marks it
-- replayed (replayed_at, replayed_offset; the claim cleared) or releases its claim. A claim older
-- than the service's bound (DEAD_LETTER_REPLAY_CLAIM_MS) is taken over by the next replay: the one
-- that held it crashed between its send and its mark. NULL: not claimed.
ALTER TABLE consumer_dead_letters ADD COLUMN IF NOT EXISTS replay_claim uuid;
ALTER TABLE consumer_dead_letters ADD COLUMN IF NOT EXISTS replay_claimed_at timestamptz;
