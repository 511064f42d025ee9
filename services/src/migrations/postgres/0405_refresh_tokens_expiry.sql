-- user-management: refresh tokens are deleted REFRESH_TOKEN_RETENTION_DAYS after they expire
-- (index.ts); every refresh adds a row (rotation) and none was ever deleted. The deletion finds the
-- due rows oldest first by this index instead of reading the whole table.

CREATE INDEX IF NOT EXISTS refresh_tokens_expires_idx ON refresh_tokens (expires_at);
