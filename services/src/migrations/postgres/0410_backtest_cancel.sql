-- backtesting-engine: a run can be cancelled by its owner (POST /api/backtests/:id/cancel): its
-- unfinished jobs become `cancelled` (a running one's replica loses its lease at its next renewal
-- and records nothing), and the run is settled `cancelled`. Before, a submitted sweep of 1,000 jobs
-- could only be waited out.

ALTER TABLE bt_runs DROP CONSTRAINT IF EXISTS bt_runs_status_check;
ALTER TABLE bt_runs ADD CONSTRAINT bt_runs_status_check CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE bt_jobs DROP CONSTRAINT IF EXISTS bt_jobs_status_check;
ALTER TABLE bt_jobs ADD CONSTRAINT bt_jobs_status_check CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled'));
