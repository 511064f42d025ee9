-- notification-service: a user's pending deliveries on one channel, counted when a notice is queued
-- (worker.ts ingest, data.ts pendingByChannel): at most NOTIFY_MAX_PENDING_PER_CHANNEL wait per user and
-- channel. Before, a user over the rate limit (NOTIFY_RATE_LIMIT_MAX a window) queued without bound,
-- and every window boundary made the whole backlog due at once, ahead of every other user's notices.
-- Partial: only pending rows, a few per user, while sent ones (kept NOTIFY_RETENTION_DAYS) are many.
CREATE INDEX IF NOT EXISTS nt_deliveries_user_pending ON nt_deliveries (user_id, channel) WHERE status = 'pending';
