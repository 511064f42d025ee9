-- backtesting-engine: the claim takes turns between users instead of serving the oldest job first
-- (services/src/services/backtesting-engine/queue.ts): the user with the fewest jobs running under
-- a live lease, then the one served longest ago, then the oldest job. It walks the users with
-- unfinished jobs (a skip scan, one index probe per user) rather than the queue, so its cost follows
-- the number of such users, not the number of queued jobs.
--
-- Each job carries its run's owner. New replicas write it at submission; the trigger fills it for
-- a replica of the previous release still submitting during a rolling deploy. CREATE TRIGGER
-- blocks inserts into bt_jobs until this migration commits, so the backfill below misses no row.
ALTER TABLE bt_jobs ADD COLUMN IF NOT EXISTS owner_id text;

CREATE OR REPLACE FUNCTION bt_jobs_fill_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT owner_id INTO NEW.owner_id FROM bt_runs WHERE id = NEW.run_id;
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS bt_jobs_owner ON bt_jobs;
CREATE TRIGGER bt_jobs_owner BEFORE INSERT ON bt_jobs
  FOR EACH ROW WHEN (NEW.owner_id IS NULL) EXECUTE FUNCTION bt_jobs_fill_owner();

UPDATE bt_jobs j SET owner_id = r.owner_id FROM bt_runs r WHERE r.id = j.run_id AND j.owner_id IS NULL;
ALTER TABLE bt_jobs ALTER COLUMN owner_id SET NOT NULL;

-- When each user last had a job claimed: with one replica nobody ever has a job running at claim
-- time, and this is what makes the claim alternate between users.
CREATE TABLE IF NOT EXISTS bt_owner_turns (
  owner_id        text PRIMARY KEY,
  last_claimed_at timestamptz NOT NULL
);

-- The users with unfinished jobs (skip scan) and each one's jobs in queue order.
CREATE INDEX IF NOT EXISTS bt_jobs_owner_queue ON bt_jobs (owner_id, queued_at, run_id, idx) WHERE status IN ('queued', 'running');
-- Each user's running jobs and their leases; also what the claim's sweep of leases run out on a
-- last attempt reads (before: a sequential scan of bt_jobs, history included).
CREATE INDEX IF NOT EXISTS bt_jobs_running ON bt_jobs (owner_id, lease_until) WHERE status = 'running';
-- The first-come-first-served claim's index has no reader any more.
DROP INDEX IF EXISTS bt_jobs_claimable;
