-- compliance-monitor: on start it replays the last COMPLIANCE_REPLAY_WINDOW_MS (an hour) of the audit
-- trail (data.ts recentAudit), found by `recorded_at` rather than by a scan of the whole trail. cm_audit
-- is append-only and takes every order event and fill of every user, so each restart read all of it.
CREATE INDEX IF NOT EXISTS cm_audit_recorded ON cm_audit (recorded_at);
