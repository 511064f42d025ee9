-- A user id has one spelling, the lower-case UUID (kit identity.ts canonicalUserId): every text
-- user_id column, and the backtests' owner_id (the user who asked), gets a CHECK
-- (<table>_<column>_canonical) refusing a UUID spelled with an upper-case hex digit. An id that is no
-- UUID passes (the Kafka topic contracts take any id, and the consumers store it as sent), exactly as
-- canonicalUserId leaves it unchanged. uuid-typed columns (users, sessions, api_keys,
-- trading_state_changes) print lower case already; trading_states.scope has its own CHECK (0196).
--
-- Rows written before (none are expected: every id stored so far came from the gateway's verified
-- identity, lower case) are lower-cased here, in the same transaction, before the constraint is
-- validated. Two exceptions keep the constraint NOT VALID on their table (new rows are still
-- checked) and raise a WARNING naming the table and the count, for an operator to resolve and then
-- run ALTER TABLE <table> VALIDATE CONSTRAINT <table>_user_id_canonical:
--   - a row whose lower-cased id would collide on a unique key with the row of the canonical
--     spelling (the same user's position, preference, idempotency key... twice): merging them is
--     the table's own business (sum a position? keep which order?), so both are left as they are;
--   - cm_audit and cm_alerts, the append-only compliance trail (their triggers forbid UPDATE): the
--     trail keeps what was recorded.
DO $migration$
DECLARE
  uuid_any constant text := '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
  append_only constant text[] := ARRAY['cm_audit', 'cm_alerts'];
  entry text;
  tbl text;
  col text;
  -- What the CHECK allows: no UUID, or a UUID with no upper-case hex digit (of `col`).
  canonical text;
  con text;
  r record;
  left_over bigint;
BEGIN
  FOREACH entry IN ARRAY ARRAY[
    'om_orders', 'om_positions', 'pm_accounts', 'pm_positions', 'pm_fills', 'pm_daily_pnl',
    'cm_audit', 'cm_alerts', 'cm_position_fills', 'cm_positions', 'te_positions',
    'ai_strategies', 'ai_decisions', 'pay_intents', 'bil_subscriptions', 'bil_invoices',
    'ra_mrr_changes', 'ra_payments', 'nt_preferences', 'nt_webhooks', 'nt_deliveries', 'nt_dead_letters',
    'bt_runs.owner_id', 'bt_jobs.owner_id', 'bt_owner_turns.owner_id'
  ] LOOP
    tbl := split_part(entry, '.', 1);
    col := coalesce(nullif(split_part(entry, '.', 2), ''), 'user_id');
    canonical := format('(%1$I !~* %2$L OR %1$I !~ %3$L)', col, uuid_any, '[A-F]');
    con := format('%s_%s_canonical', tbl, col);
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK %s NOT VALID', tbl, con, canonical);
    IF NOT tbl = ANY (append_only) THEN
      BEGIN
        EXECUTE format('UPDATE %1$I SET %2$I = lower(%2$I) WHERE NOT %3$s', tbl, col, canonical);
      EXCEPTION WHEN unique_violation THEN
        -- Some row collides with its canonical twin: lower-case the others one at a time.
        FOR r IN EXECUTE format('SELECT ctid AS row_at FROM %I WHERE NOT %s', tbl, canonical) LOOP
          BEGIN
            EXECUTE format('UPDATE %1$I SET %2$I = lower(%2$I) WHERE ctid = $1', tbl, col) USING r.row_at;
          EXCEPTION WHEN unique_violation THEN
            NULL; -- left as it is (see above)
          END;
        END LOOP;
      END;
    END IF;
    EXECUTE format('SELECT count(*) FROM %I WHERE NOT %s', tbl, canonical) INTO left_over;
    IF left_over = 0 THEN
      EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', tbl, con);
    ELSE
      RAISE WARNING '%: % row(s) keep a user id in upper case (%); constraint % left NOT VALID',
        tbl, left_over, CASE WHEN tbl = ANY (append_only) THEN 'append-only' ELSE 'their canonical twin exists' END, con;
    END IF;
  END LOOP;
END
$migration$;
