-- notification-service (nt_*): per-user preferences, webhook endpoints, one delivery per
-- (notice, channel, target) (the unique key is the deduplication: a redelivered event adds nothing),
-- and the dead letters of deliveries that ran out of attempts.

CREATE TABLE IF NOT EXISTS nt_preferences (
  user_id           text PRIMARY KEY,
  email             text,
  telegram_chat_id  text,
  time_zone         text NOT NULL DEFAULT 'UTC',
  quiet_start       text CHECK (quiet_start ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
  quiet_end         text CHECK (quiet_end ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'),
  -- category -> channels; null = every channel the user has an address for.
  channels          jsonb,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

CREATE TABLE IF NOT EXISTS nt_webhooks (
  webhook_id  uuid PRIMARY KEY,
  user_id     text NOT NULL,
  url         text NOT NULL,
  -- HMAC key the service signs with (shown to the user once, at creation).
  secret      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS nt_webhooks_user ON nt_webhooks (user_id);

CREATE TABLE IF NOT EXISTS nt_deliveries (
  delivery_id      bigserial PRIMARY KEY,
  dedup_key        text NOT NULL,
  user_id          text NOT NULL,
  channel          text NOT NULL CHECK (channel IN ('email', 'telegram', 'webhook')),
  -- e-mail address, Telegram chat id or webhook id, as they were when the notice was made.
  target           text NOT NULL,
  kind             text NOT NULL,
  subject          text NOT NULL,
  body             text NOT NULL,
  notice           jsonb NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  sent_at          timestamptz,
  UNIQUE (dedup_key, channel, target)
);
CREATE INDEX IF NOT EXISTS nt_deliveries_due ON nt_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS nt_deliveries_user ON nt_deliveries (user_id, created_at DESC);

CREATE TABLE IF NOT EXISTS nt_dead_letters (
  dead_letter_id  bigserial PRIMARY KEY,
  delivery_id     bigint NOT NULL REFERENCES nt_deliveries (delivery_id),
  user_id         text NOT NULL,
  channel         text NOT NULL,
  reason          text NOT NULL,
  attempts        integer NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  replayed_at     timestamptz
);
CREATE INDEX IF NOT EXISTS nt_dead_letters_user ON nt_dead_letters (user_id, created_at DESC);
