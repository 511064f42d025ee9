-- backtesting-engine: runs deleted from PostgreSQL whose ClickHouse curves and trades may remain,
-- written in the statement that deletes the run (DELETE /:id, the retention). The series sweep
-- (services/src/services/backtesting-engine/sweep.ts) deletes their rows a batch a pass, one mutation
-- per table, and then these entries: a client deleting runs never issues a ClickHouse mutation itself
-- (each rewrites every part it touches, the whole table once its parts are merged).
CREATE TABLE IF NOT EXISTS bt_deleted_runs (
  run_id      uuid PRIMARY KEY,
  deleted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS bt_deleted_runs_deleted_at ON bt_deleted_runs (deleted_at);
