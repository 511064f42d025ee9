-- user-management: a version of each user's state (status, role, token epoch), raised by every
-- statement that changes it (role change, disable, enable, password change, logout everywhere,
-- promotion). The state is cached in Dragonfly (auth:user:<id>) after each commit, and two changes
-- that commit close together could be written there in the other order, leaving the older state
-- (a logout-all's epoch replaced by the password change's before it; an enable followed by
-- "disabled"). The cache write now never replaces a higher version with a lower one
-- (user-management/user-state.ts); row locks order the UPDATEs, so the version follows commit order.
-- A deleted user has no row: its state's version is Number.MAX_SAFE_INTEGER, above every other.
ALTER TABLE users ADD COLUMN IF NOT EXISTS state_version bigint NOT NULL DEFAULT 0 CHECK (state_version >= 0);
