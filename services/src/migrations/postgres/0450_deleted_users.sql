-- user-management: a tombstone per deleted account, written in the deleting transaction. A deleted
-- user has no `users` row, but order-management cannot tell "deleted" from "never had a row" by that
-- (its orders carry the caller's id as text, and ids the gateway vouched for are not always rows
-- here), so deletion leaves this durable mark: order-management refuses the account's new orders
-- and its sweep (order-management/kill-switch.ts) requests the cancel of the account's open orders
-- on every pass, so neither a restart nor a missed pub/sub message leaves them resting.
-- One small row per deleted account, kept: the mark must outlive every order of the account.
CREATE TABLE IF NOT EXISTS deleted_users (
  user_id    text PRIMARY KEY,
  deleted_at timestamptz NOT NULL DEFAULT now(),
  -- One spelling of a user id, the lower-case UUID, as every text user_id column since 0400.
  CONSTRAINT deleted_users_user_id_canonical CHECK (user_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' OR user_id !~ '[A-F]')
);
