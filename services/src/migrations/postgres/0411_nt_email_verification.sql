-- notification-service: an e-mail address receives notices only once its owner has confirmed it
-- (a 6-digit code sent to it: email-verification.ts). Before, whatever address a user typed got the
-- platform's notices at once: a typo, or a stranger's address, mailed under the platform's name.
-- Only the code's SHA-256 is kept, with its expiry and the wrong tries made against it. Addresses set
-- before this migration keep working: they count as confirmed (their owners have been receiving).

ALTER TABLE nt_preferences
  ADD COLUMN IF NOT EXISTS email_verified_at     timestamptz,
  ADD COLUMN IF NOT EXISTS email_code_hash       bytea,
  ADD COLUMN IF NOT EXISTS email_code_expires_at timestamptz,
  ADD COLUMN IF NOT EXISTS email_code_tries      integer NOT NULL DEFAULT 0;

UPDATE nt_preferences SET email_verified_at = updated_at WHERE email IS NOT NULL AND email_verified_at IS NULL;
