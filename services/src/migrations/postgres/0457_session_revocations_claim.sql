-- user-management: the sweep of owed session revocations (session-revocations.ts) published to Dragonfly
-- inside the PostgreSQL transaction that held the rows (FOR UPDATE SKIP LOCKED), so every Redis round
-- trip of a batch ran with the transaction open and a pool connection held (the shape the refund
-- reconciler lost in migration 0432). It now claims a batch in one committed statement, publishes with
-- no transaction open, then deletes the rows it published under its claim. `claim`: the pass's token;
-- another pass skips the row until `claimed_until` (a pass that died between publishing and deleting
-- leaves its rows to the next pass after that, which publishes them again: a SET and a message, harmless).
ALTER TABLE session_revocations_unpublished ADD COLUMN IF NOT EXISTS claim uuid;
ALTER TABLE session_revocations_unpublished ADD COLUMN IF NOT EXISTS claimed_until timestamptz;
