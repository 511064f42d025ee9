-- backtesting-engine: equity/drawdown curves (downsampled) and trades per job attempt. Only the
-- attempt recorded in PostgreSQL (bt_jobs.result_attempt) is read, so a killed attempt's rows are inert.
CREATE TABLE IF NOT EXISTS bt_curves (
  run_id    String,
  job       UInt32,
  attempt   UInt32,
  seq       UInt32,
  time_ms   UInt64,
  equity    Float64,
  drawdown  Float64
) ENGINE = MergeTree()
ORDER BY (run_id, job, attempt, seq);

CREATE TABLE IF NOT EXISTS bt_trades (
  run_id         String,
  job            UInt32,
  attempt        UInt32,
  seq            UInt32,
  symbol         String,
  direction      String,
  entry_time_ms  UInt64,
  exit_time_ms   UInt64,
  quantity       Float64,
  entry_price    Float64,
  exit_price     Float64,
  pnl            Float64,
  fees           Float64
) ENGINE = MergeTree()
ORDER BY (run_id, job, attempt, seq);
