-- user-management: revocation of issued access tokens. Logout everywhere, a role change or
-- disabling the account raises token_epoch; access tokens carry the epoch they were issued in
-- (claim `ep`) and the gateway refuses older ones (services/src/services/user-management/user-state.ts).
ALTER TABLE users ADD COLUMN IF NOT EXISTS token_epoch integer NOT NULL DEFAULT 0 CHECK (token_epoch >= 0);
