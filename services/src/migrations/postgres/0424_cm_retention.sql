-- compliance-monitor: retention of the compliance trail. cm_audit (every order event and fill) and
-- cm_alerts grew without bound: their triggers (0190) refused every DELETE. Rows past the retention
-- may now be deleted, by cm_delete_expired only, which the service's sweep runs in bounded batches
-- (COMPLIANCE_AUDIT_RETENTION_DAYS / COMPLIANCE_ALERT_RETENTION_DAYS, default 7 years).
--
-- Tamper resistance is kept for every row younger than that:
--   - UPDATE and TRUNCATE stay refused, as before;
--   - a DELETE is refused unless the transaction set `cm.retention_days` (cm_delete_expired does, for
--     its own statement) and the row is older than that many days, and never for a row younger than
--     1,825 days (5 years): the least the service accepts, and what MiFID II asks of order records
--     and surveillance records; SEC 17a-4 asks 6, hence the default of 7. Whoever can set the
--     setting can at most delete rows older than both.
CREATE OR REPLACE FUNCTION cm_delete_only_expired() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kept_days integer := nullif(current_setting('cm.retention_days', true), '')::integer;
  -- TG_ARGV[0]: the row's time column (recorded_at, raised_at).
  row_at timestamptz := (to_jsonb(OLD) ->> TG_ARGV[0])::timestamptz;
BEGIN
  IF kept_days IS NOT NULL AND kept_days >= 1825 AND row_at < now() - make_interval(days => kept_days) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'compliance audit trail is append-only (% on %): only rows past the retention may be deleted, by cm_delete_expired', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS cm_audit_append_only ON cm_audit;
CREATE TRIGGER cm_audit_append_only BEFORE UPDATE ON cm_audit FOR EACH ROW EXECUTE FUNCTION cm_forbid_change();
DROP TRIGGER IF EXISTS cm_audit_retention ON cm_audit;
CREATE TRIGGER cm_audit_retention BEFORE DELETE ON cm_audit FOR EACH ROW EXECUTE FUNCTION cm_delete_only_expired('recorded_at');
DROP TRIGGER IF EXISTS cm_alerts_append_only ON cm_alerts;
CREATE TRIGGER cm_alerts_append_only BEFORE UPDATE ON cm_alerts FOR EACH ROW EXECUTE FUNCTION cm_forbid_change();
DROP TRIGGER IF EXISTS cm_alerts_retention ON cm_alerts;
CREATE TRIGGER cm_alerts_retention BEFORE DELETE ON cm_alerts FOR EACH ROW EXECUTE FUNCTION cm_delete_only_expired('raised_at');

-- One bounded batch of `tbl`'s rows older than `kept_days`, oldest first (indexes of 0421, 0422),
-- skipping rows another replica's pass holds; answers how many were deleted. The setting the trigger
-- reads is the transaction's and is cleared before returning.
CREATE OR REPLACE FUNCTION cm_delete_expired(tbl text, kept_days integer, batch integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  PERFORM set_config('cm.retention_days', kept_days::text, true);
  IF tbl = 'cm_audit' THEN
    WITH due AS (SELECT id FROM cm_audit WHERE recorded_at < now() - make_interval(days => kept_days) ORDER BY recorded_at LIMIT batch FOR UPDATE SKIP LOCKED)
    DELETE FROM cm_audit a USING due WHERE a.id = due.id;
  ELSIF tbl = 'cm_alerts' THEN
    WITH due AS (SELECT alert_id FROM cm_alerts WHERE raised_at < now() - make_interval(days => kept_days) ORDER BY raised_at LIMIT batch FOR UPDATE SKIP LOCKED)
    DELETE FROM cm_alerts a USING due WHERE a.alert_id = due.alert_id;
  ELSE
    RAISE EXCEPTION 'cm_delete_expired: no retention for table %', tbl;
  END IF;
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM set_config('cm.retention_days', '', true);
  RETURN n;
END
$$;
