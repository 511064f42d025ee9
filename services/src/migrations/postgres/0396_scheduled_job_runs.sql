-- Scheduled jobs (catalog `scheduledJob`, e.g. ml-predictor-retrain): the outcome of their runs,
-- written by the job's own process (kit/scheduled-job-runs.ts, around the command) so that it is
-- seen whatever started the run: the Docker runtime's cron runner or a Kubernetes CronJob. The
-- owning service exports it on /metrics (scheduled_job_last_*_timestamp_seconds) for the alerts.
-- One row per job. last_failure_code is a short code (an error's code or class name, EXIT_<n>),
-- never an error message: those can carry secrets or a peer's text.
CREATE TABLE IF NOT EXISTS scheduled_job_runs (
  job               text PRIMARY KEY,
  last_started_at   timestamptz,
  last_succeeded_at timestamptz,
  last_failed_at    timestamptz,
  last_failure_code text CHECK (last_failure_code ~ '^[A-Za-z0-9_.-]{1,64}$')
);
