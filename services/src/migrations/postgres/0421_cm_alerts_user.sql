-- compliance-monitor: a trader's alerts (GET /api/compliance/alerts/mine) are found by user, newest
-- first, rather than by a scan and sort of every user's alerts. cm_alerts is append-only (its
-- triggers forbid DELETE), and one trader placing and cancelling large orders away from the touch
-- adds alerts at the order rate, so without the index every trader's read grew with everyone's alerts.
-- The admins' list (GET /alerts, every user's, newest first) reads the second index.
CREATE INDEX IF NOT EXISTS cm_alerts_user_raised ON cm_alerts (user_id, raised_at DESC);
CREATE INDEX IF NOT EXISTS cm_alerts_raised ON cm_alerts (raised_at DESC);
