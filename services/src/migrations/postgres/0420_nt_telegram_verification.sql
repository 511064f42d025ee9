-- notification-service: a Telegram chat receives notices only once its owner has confirmed it (a
-- 6-digit code the bot posts to the chat: address-confirmation.ts), as an e-mail address has since
-- 0411. Before, any chat id a user typed got that user's fills and alerts from the platform's bot: a
-- stranger's chat could be spammed. Only the code's SHA-256 is kept, with its expiry and the wrong
-- tries made against it. Chat ids set before this migration are NOT confirmed (no UPDATE here, unlike
-- 0411): nothing proves their owners chose them, so their users confirm them once; until then no
-- notice goes to them (deliveries already queued for them die at send time: worker.ts).

ALTER TABLE nt_preferences
  ADD COLUMN IF NOT EXISTS telegram_verified_at     timestamptz,
  ADD COLUMN IF NOT EXISTS telegram_code_hash       bytea,
  ADD COLUMN IF NOT EXISTS telegram_code_expires_at timestamptz,
  ADD COLUMN IF NOT EXISTS telegram_code_tries      integer NOT NULL DEFAULT 0;
