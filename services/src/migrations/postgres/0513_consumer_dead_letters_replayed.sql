-- database-service deletes PostgreSQL's dead letters (consumer_dead_letters, 0195) replayed longer ago than
-- DEAD_LETTER_REPLAYED_RETENTION_DAYS (the kit's deleteOlderThan on `replayed_at`, oldest first): every
-- letter was kept for good before, replayed or not. A letter not replayed is kept however old (an operator
-- has still to fix its cause); this index holds only the replayed ones, which a pass reads.
CREATE INDEX IF NOT EXISTS consumer_dead_letters_replayed ON consumer_dead_letters (replayed_at) WHERE replayed_at IS NOT NULL;
