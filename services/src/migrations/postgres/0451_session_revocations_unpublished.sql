-- user-management: a session (refresh-token family) revoked alone, by reuse or by its logout, whose
-- revocation the gateways have not been told yet. Written in the revoking transaction; deleted once
-- Dragonfly has the revocation (auth:session-revoked:<family id>, published on auth:user-changes).
-- A reuse whose publication failed (Dragonfly unreachable) only logged, and every gateway kept
-- accepting the session's access tokens until they expired; the row keeps the publication owed, and
-- user-management's sweep (session-revocations.ts) retries it until Dragonfly takes it, whichever
-- replica runs it and across restarts. Rows older than an access token can live (3,660 s) are
-- dropped unpublished: every token of the session has expired by then.
CREATE TABLE IF NOT EXISTS session_revocations_unpublished (
  family_id  uuid PRIMARY KEY,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS session_revocations_unpublished_revoked_idx ON session_revocations_unpublished (revoked_at);
