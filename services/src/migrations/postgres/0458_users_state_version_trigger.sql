-- user-management: users.state_version (migration 0452) is raised by every statement of this release
-- that changes a user's state, but not by a replica of a release before session 41 still running during
-- a rolling deploy (its UPDATEs do not name the column). Such a change left the version where it was, so
-- the state read after it could not replace, in Dragonfly, the older state of the same version. Raised
-- here when a row's role, disabled_at or token_epoch changes and the statement left state_version alone;
-- a statement that raises it itself is left as it is (no double raise).
CREATE OR REPLACE FUNCTION users_state_version_follows() RETURNS trigger AS $$
BEGIN
  IF NEW.state_version = OLD.state_version
     AND (NEW.role IS DISTINCT FROM OLD.role OR NEW.disabled_at IS DISTINCT FROM OLD.disabled_at OR NEW.token_epoch IS DISTINCT FROM OLD.token_epoch) THEN
    NEW.state_version := OLD.state_version + 1;
  END IF;
  RETURN NEW;
END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS users_state_version_follows ON users;
CREATE TRIGGER users_state_version_follows BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_state_version_follows();
