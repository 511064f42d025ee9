-- backtesting-engine: finished runs in the order they finished, for BACKTEST_RETENTION_DAYS (the
-- series sweep, services/src/services/backtesting-engine/sweep.ts, deletes the oldest batch past it):
-- without it each pass would read all of bt_runs. Open runs are left out (never deleted).
CREATE INDEX IF NOT EXISTS bt_runs_finished ON bt_runs (finished_at) WHERE status IN ('succeeded', 'failed', 'cancelled');
