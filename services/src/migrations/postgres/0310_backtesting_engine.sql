-- backtesting-engine (issue 12): runs (one per submitted backtest) and their jobs, which replicas
-- claim with SELECT ... FOR UPDATE SKIP LOCKED under a lease (services/src/services/backtesting-engine/queue.ts).
-- Curves and trades live in ClickHouse (bt_curves, bt_trades), keyed by the job's winning attempt.
CREATE TABLE IF NOT EXISTS bt_runs (
  id           uuid PRIMARY KEY,
  owner_id     text NOT NULL,
  strategy     text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('run', 'sweep', 'walk-forward')),
  request      jsonb NOT NULL,
  total_jobs   integer NOT NULL CHECK (total_jobs > 0),
  status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  finished_at  timestamptz
);
CREATE INDEX IF NOT EXISTS bt_runs_owner_created ON bt_runs (owner_id, created_at DESC);

CREATE TABLE IF NOT EXISTS bt_jobs (
  run_id          uuid NOT NULL REFERENCES bt_runs (id) ON DELETE CASCADE,
  idx             integer NOT NULL CHECK (idx >= 0),
  spec            jsonb NOT NULL,
  status          text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  max_attempts    integer NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
  worker          text,
  lease_until     timestamptz,
  progress        real NOT NULL DEFAULT 0,
  -- The attempt whose result (and ClickHouse rows) count; rows of other attempts are never read.
  result_attempt  integer,
  result          jsonb,
  error           jsonb,
  queued_at       timestamptz NOT NULL DEFAULT now(),
  started_at      timestamptz,
  finished_at     timestamptz,
  PRIMARY KEY (run_id, idx),
  CONSTRAINT bt_jobs_result CHECK ((status = 'succeeded') = (result IS NOT NULL))
);
-- What a claim scans: unfinished jobs in queue order.
CREATE INDEX IF NOT EXISTS bt_jobs_claimable ON bt_jobs (queued_at, run_id, idx) WHERE status IN ('queued', 'running');
