-- The kill switch's record (issue 10). risk-analyzer's audited writer keeps the current trading
-- state of each scope (the platform, or one user) in trading_states and every change in
-- trading_state_changes, in one transaction that also writes the Dragonfly key the pre-trade check
-- reads (trading:state:global / trading:state:user:<id>). PostgreSQL is the record; Dragonfly holds
-- the copy that is enforced, re-applied from here when they differ (after a Dragonfly restart, a key
-- written by hand, a commit that failed after the key was written).

CREATE TABLE IF NOT EXISTS trading_states (
  scope       text PRIMARY KEY CHECK (scope = 'global' OR scope ~ '^user:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
  state       text NOT NULL CHECK (state IN ('active', 'reduce_only', 'halted')),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- No foreign key to users: the audit outlives a deleted account.
CREATE TABLE IF NOT EXISTS trading_state_changes (
  id          bigserial PRIMARY KEY,
  scope       text NOT NULL,
  user_id     uuid,
  from_state  text NOT NULL CHECK (from_state IN ('active', 'reduce_only', 'halted')),
  to_state    text NOT NULL CHECK (to_state IN ('active', 'reduce_only', 'halted')),
  reason      text NOT NULL CHECK (length(reason) BETWEEN 3 AND 500),
  changed_by  uuid NOT NULL,
  auth_method text NOT NULL CHECK (auth_method IN ('jwt', 'api-key')),
  changed_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((scope = 'global') = (user_id IS NULL))
);
CREATE INDEX IF NOT EXISTS trading_state_changes_scope ON trading_state_changes (scope, id DESC);

-- Append-only: an audit row is never changed or removed.
CREATE OR REPLACE FUNCTION trading_state_changes_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'trading state audit is append-only (% on %)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER IF EXISTS trading_state_changes_append_only ON trading_state_changes;
CREATE TRIGGER trading_state_changes_append_only BEFORE UPDATE OR DELETE ON trading_state_changes
  FOR EACH ROW EXECUTE FUNCTION trading_state_changes_forbid_change();
DROP TRIGGER IF EXISTS trading_state_changes_no_truncate ON trading_state_changes;
CREATE TRIGGER trading_state_changes_no_truncate BEFORE TRUNCATE ON trading_state_changes
  FOR EACH STATEMENT EXECUTE FUNCTION trading_state_changes_forbid_change();
