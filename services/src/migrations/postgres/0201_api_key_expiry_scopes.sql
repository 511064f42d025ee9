-- user-management: API key expiry and scopes (services/src/services/user-management/api-keys.ts).
-- Keys made before this migration keep working as before: no expiry (NULL) and every scope (the
-- column default fills the existing rows). New keys get an expiry and their scopes from the request.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS scopes text[] NOT NULL DEFAULT ARRAY['read', 'trade']::text[];

ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_expiry_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_expiry_check CHECK (expires_at IS NULL OR expires_at > created_at);
-- At least one scope, each from the closed set (`<@` is false for a NULL element).
ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check CHECK (cardinality(scopes) BETWEEN 1 AND 2 AND scopes <@ ARRAY['read', 'trade']::text[]);

-- GET /api-keys lists a user's keys newest first, paged by (created_at, id): this index serves that
-- and every other per-user lookup, so the plain user_id index goes.
CREATE INDEX IF NOT EXISTS api_keys_user_created_idx ON api_keys (user_id, created_at DESC, id DESC);
DROP INDEX IF EXISTS api_keys_user_idx;
