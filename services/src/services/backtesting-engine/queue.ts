/**
 * Data access: the job queue on PostgreSQL. A replica claims a job with `SELECT ... FOR UPDATE SKIP
 * LOCKED` (replicas never wait on each other's jobs), taking turns between users (CLAIM_SQL: one
 * user's 2,000-job sweep does not hold back another's single backtest), and holds it under
 * a lease it renews while it works (every progress report). A job is claimable when queued, or
 * when its lease ran out: the replica that held it died or stalled, and the job runs again (up to
 * `max_attempts`). Each claim bumps `attempts`; every later write is conditional on
 * (worker, attempt), so a replica that lost its lease can no longer record anything, and the
 * result of exactly one attempt counts. The claim's statement marks the job's run `running` too, so
 * neither is written without the other. A run is settled (succeeded, or failed when a job failed) in
 * the transaction that makes its last job final (settle.ts): a job's end (`finish`), or the claim's
 * failing of jobs whose last attempt's lease ran out (`failExhausted`); a claim reads no other run.
 * A run some other path left open with every job final is settled, and one it left `queued` while
 * its jobs ran is marked `running`, by a pass each replica makes at most once an interval
 * (StrandedRunRepair), not by every claim.
 *
 * Why not pg-boss (10.x, the newest on Node 20): it creates and migrates its own schema when a
 * replica starts (here all DDL runs once, in the migration job, under the migration user), and its
 * expiry is fixed per job rather than renewed while a long job makes progress, so a killed worker's
 * job would wait out the longest job's bound. The claim/renew/finish below is a few statements.
 */
import { lockAccountForWrite, type PostgresClient } from "../../kit";
import type { JobSpec } from "./plan";
import type { BacktestRequest } from "./schemas";
import { settleAfter, StrandedRunRepair } from "./settle";

export interface ClaimedJob {
  runId: string;
  idx: number;
  attempt: number;
  spec: JobSpec;
  request: BacktestRequest;
}

export type EnqueueOutcome =
  | { kind: "queued" }
  | { kind: "at_limit"; open: number }
  /** The owner's account was deleted (its tombstone, read under its lock in the submitting transaction: kit lockAccountForWrite). */
  | { kind: "account_deleted" }
  /** The Idempotency-Key's run, as it is now. */
  | { kind: "replayed"; run: { id: string; status: string; kind: string; jobs: number } }
  /** The Idempotency-Key was used for another request. */
  | { kind: "key_reused" };

/** The claim was lost (lease expired and another replica took the job). */
export class LeaseLostError extends Error {}

/** Key space of the per-owner submission lock (first half of the two-int advisory lock key; "bt"). */
const SUBMIT_LOCK_SPACE = 0x6274;

/** A job a replica may take: queued, or running under a lease that ran out, with an attempt left. */
const CLAIMABLE = `(j.status = 'queued' OR (j.status = 'running' AND j.lease_until < now())) AND j.attempts < j.max_attempts`;

/** A job whose last allowed attempt's lease ran out: its replica died or stalled, and it fails. */
const EXHAUSTED = `status = 'running' AND lease_until < now() AND attempts >= max_attempts`;

/**
 * The runs of such jobs (exported for bench/backtest-claim.ts's EXPLAIN): what each claim probes
 * first, reading bt_jobs_running (the running jobs only, a few per replica), not the open runs.
 */
export const EXHAUSTED_RUNS_SQL = `SELECT DISTINCT run_id FROM bt_jobs WHERE ${EXHAUSTED}`;

/**
 * Claims the next job for worker $1 under a lease of $2 ms (exported for bench/backtest-claim.ts's
 * EXPLAIN). Fair share between users: `owners` walks the users with unfinished jobs (a skip scan of
 * bt_jobs_owner_queue, one probe per user), `turns` orders those with a claimable job by
 *   1. their jobs running under a live lease now, fewest first (a share of the replicas),
 *   2. their last claim, longest ago first, never first (with one replica nobody has a job running
 *      at claim time: this is what alternates),
 *   3. their oldest claimable job (queued_at, run_id, idx),
 * and `next` takes the first user's oldest job that no concurrent claim holds (SKIP LOCKED; when it
 * holds all of them, the next user's). `turns` is materialized in that order and read by a nested
 * loop that stops at the first job locked, so no other user's job is locked in passing. The claim
 * costs a few probes per user with unfinished jobs, whatever the number of queued jobs. `started`
 * marks the job's run `running` if it was `queued`, in the same statement as the job (a replica
 * killed between two statements left the run `queued` while its job ran); it locks that run's row
 * only while it is `queued` (two claims of its first jobs at once: the second waits for the first).
 */
export const CLAIM_SQL = `WITH RECURSIVE owners AS (
    (SELECT owner_id FROM bt_jobs WHERE status IN ('queued', 'running') ORDER BY owner_id LIMIT 1)
    UNION ALL
    SELECT (SELECT j.owner_id FROM bt_jobs j WHERE j.status IN ('queued', 'running') AND j.owner_id > o.owner_id ORDER BY j.owner_id LIMIT 1)
    FROM owners o WHERE o.owner_id IS NOT NULL),
  turns AS MATERIALIZED (
    SELECT o.owner_id FROM owners o
    CROSS JOIN LATERAL (
      SELECT queued_at, run_id, idx FROM bt_jobs j WHERE j.owner_id = o.owner_id AND ${CLAIMABLE}
      ORDER BY queued_at, run_id, idx LIMIT 1) oldest
    LEFT JOIN bt_owner_turns t ON t.owner_id = o.owner_id
    ORDER BY (SELECT count(*) FROM bt_jobs l WHERE l.owner_id = o.owner_id AND l.status = 'running' AND l.lease_until >= now()),
             t.last_claimed_at NULLS FIRST, oldest.queued_at, oldest.run_id, oldest.idx),
  next AS (
    SELECT job.run_id, job.idx, job.owner_id FROM turns
    CROSS JOIN LATERAL (
      SELECT run_id, idx, owner_id FROM bt_jobs j WHERE j.owner_id = turns.owner_id AND ${CLAIMABLE}
      ORDER BY queued_at, run_id, idx
      FOR UPDATE SKIP LOCKED
      LIMIT 1) job
    LIMIT 1),
  turn AS (
    INSERT INTO bt_owner_turns (owner_id, last_claimed_at) SELECT owner_id, clock_timestamp() FROM next
    ON CONFLICT (owner_id) DO UPDATE SET last_claimed_at = greatest(bt_owner_turns.last_claimed_at, excluded.last_claimed_at)),
  started AS (
    UPDATE bt_runs s SET status = 'running', started_at = coalesce(s.started_at, now()) FROM next
    WHERE s.id = next.run_id AND s.status = 'queued')
  UPDATE bt_jobs j SET status = 'running', attempts = j.attempts + 1, worker = $1, progress = 0,
         lease_until = now() + $2 * interval '1 millisecond', started_at = coalesce(j.started_at, now())
  FROM next, bt_runs r
  WHERE j.run_id = next.run_id AND j.idx = next.idx AND r.id = j.run_id
  RETURNING j.run_id, j.idx, j.attempts, j.spec, r.request`;

/**
 * User $1's unfinished jobs, counted at submission (exported for bench/backtest-claim.ts's EXPLAIN):
 * the user's entries of bt_jobs_owner_queue, whatever the number of runs or of finished jobs (the
 * join with bt_runs it replaces read all of bt_jobs, history included).
 */
export const OPEN_JOBS_SQL = `SELECT count(*) AS n FROM bt_jobs WHERE owner_id = $1 AND status IN ('queued', 'running')`;

/** Stranded runs one repair pass settles at most: a pass is one short transaction, whatever the backlog. */
const STRANDED_RUNS_PER_PASS = 100;

export interface StrandedRunRepairOptions {
  /** Minimum time between two passes of this replica. */
  everyMs: number;
  /** The clock passes are timed on (tests set it). */
  now?: () => number;
}

export class JobQueue {
  readonly strandedRuns: StrandedRunRepair;

  constructor(
    private readonly pg: PostgresClient,
    readonly worker: string,
    private readonly leaseMs: number,
    repair: StrandedRunRepairOptions = { everyMs: 300_000 },
  ) {
    this.strandedRuns = new StrandedRunRepair(pg, repair.everyMs, STRANDED_RUNS_PER_PASS, repair.now);
  }

  /**
   * Records the run and its jobs, unless the owner's unfinished jobs and these would pass
   * `maxOpenJobs`: then nothing is written and the owner's unfinished job count is answered.
   * Submissions of one owner take turns under an advisory lock: concurrent ones cannot pass the cap
   * together, nor make two runs of one Idempotency-Key (looked up first: a retry of a submission is
   * answered its run even when the owner is at the cap now).
   */
  async enqueue(
    run: { id: string; ownerId: string; strategy: string; kind: string; request: BacktestRequest },
    jobs: JobSpec[],
    maxAttempts: number,
    maxOpenJobs: number,
    idempotency: { key: string; requestHash: string } | null = null,
  ): Promise<EnqueueOutcome> {
    return this.pg.transaction(async (c) => {
      if ((await lockAccountForWrite(c, run.ownerId)) === "deleted") return { kind: "account_deleted" };
      if (idempotency) {
        const prior = await c.query<{ id: string; status: string; kind: string; total_jobs: number; request_hash: string }>(
          `SELECT id, status, kind, total_jobs, request_hash FROM bt_runs WHERE owner_id = $1 AND idempotency_key = $2`,
          [run.ownerId, idempotency.key],
        );
        const p = prior.rows[0];
        if (p) return p.request_hash === idempotency.requestHash ? { kind: "replayed", run: { id: p.id, status: p.status, kind: p.kind, jobs: p.total_jobs } } : { kind: "key_reused" };
      }
      const { rows } = await c.query<{ n: string }>(OPEN_JOBS_SQL, [run.ownerId]);
      const open = Number(rows[0].n);
      if (open + jobs.length > maxOpenJobs) return { kind: "at_limit", open };
      await c.query(
        `INSERT INTO bt_runs (id, owner_id, strategy, kind, request, total_jobs, idempotency_key, request_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [run.id, run.ownerId, run.strategy, run.kind, JSON.stringify(run.request), jobs.length, idempotency?.key ?? null, idempotency?.requestHash ?? null],
      );
      await c.query(
        `INSERT INTO bt_jobs (run_id, idx, spec, max_attempts, owner_id)
         SELECT $1, ordinality - 1, spec, $3, $4 FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS j(spec, ordinality)`,
        [run.id, JSON.stringify(jobs), maxAttempts, run.ownerId],
      );
      return { kind: "queued" };
    }, { lock: { space: SUBMIT_LOCK_SPACE, key: run.ownerId } });
  }

  /**
   * Fails jobs whose last allowed attempt's lease ran out, then claims the next job (or undefined).
   * Runs are settled by whatever makes their last job final, so a claim costs the same with 20 or
   * 2,000 runs open; once an interval, it makes the replica's pass over stranded runs first.
   */
  async claim(): Promise<ClaimedJob | undefined> {
    await this.strandedRuns.runIfDue();
    await this.failExhausted();
    const r = await this.pg.query<{ run_id: string; idx: number; attempts: number; spec: JobSpec; request: BacktestRequest }>(
      CLAIM_SQL,
      [this.worker, this.leaseMs],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    return { runId: row.run_id, idx: row.idx, attempt: row.attempts, spec: row.spec, request: row.request };
  }

  /** Renews the lease and records progress; throws LeaseLostError when the job is no longer ours. */
  async heartbeat(job: ClaimedJob, progress: number): Promise<void> {
    const r = await this.pg.query(
      `UPDATE bt_jobs SET lease_until = now() + $5 * interval '1 millisecond', progress = $4
       WHERE run_id = $1 AND idx = $2 AND attempts = $3 AND worker = $6 AND status = 'running'`,
      [job.runId, job.idx, job.attempt, progress, this.leaseMs, this.worker],
    );
    if (r.rowCount !== 1) throw new LeaseLostError(`job ${job.runId}/${job.idx} attempt ${job.attempt} is no longer held by ${this.worker}`);
  }

  /**
   * Cancels a run of `ownerId`'s: its queued and running jobs become `cancelled` and the run is settled
   * `cancelled`, in one transaction under the run's lock. A running job's replica loses its lease at
   * its next renewal (heartbeat matches `running` only) and records nothing. Answers the jobs
   * cancelled, or the run's status when it had none left to cancel (undefined: no such run of the owner).
   */
  async cancel(runId: string, ownerId: string): Promise<{ cancelled: number } | { final: string } | undefined> {
    let cancelled = 0;
    const { written } = await settleAfter(this.pg, [runId], async (c) => {
      const r = await c.query(
        `UPDATE bt_jobs SET status = 'cancelled', finished_at = now(), lease_until = NULL
          WHERE run_id = $1 AND owner_id = $2 AND status IN ('queued', 'running')`,
        [runId, ownerId],
      );
      cancelled = r.rowCount ?? 0;
      return cancelled > 0;
    });
    if (written) return { cancelled };
    const run = await this.pg.query<{ status: string }>("SELECT status FROM bt_runs WHERE id = $1 AND owner_id = $2", [runId, ownerId]);
    return run.rows[0] && { final: run.rows[0].status };
  }

  /** Records the attempt's result (exactly once per job: later or stale attempts match no row). */
  async succeed(job: ClaimedJob, result: unknown): Promise<boolean> {
    return this.finish(
      job,
      `status = 'succeeded', result = $5, result_attempt = $3, progress = 1, finished_at = now(), lease_until = NULL`,
      [JSON.stringify(result)],
    );
  }

  /** A job that cannot succeed (bad data for it): failed at once, no retry. */
  async fail(job: ClaimedJob, error: { code: string; message: string; field?: string }): Promise<void> {
    await this.finish(job, `status = 'failed', error = $5, finished_at = now(), lease_until = NULL`, [JSON.stringify(error)]);
  }

  /**
   * Gives a job back: claimable again at once, or failed when it has no attempt left. A replica that
   * stops (a deploy, a scale-down) gives its attempt back too (`stopping`): the job did nothing wrong,
   * and rolling restarts during a long sweep must not exhaust its attempts. Its limit grows by one
   * rather than its count shrinking, so every attempt keeps a number of its own (ClickHouse rows).
   */
  async release(job: ClaimedJob, reason: string, stopping = false): Promise<void> {
    await this.finish(
      job,
      `lease_until = NULL, worker = NULL,
       max_attempts = CASE WHEN $6 THEN max_attempts + 1 ELSE max_attempts END,
       status = CASE WHEN NOT $6 AND attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
       finished_at = CASE WHEN NOT $6 AND attempts >= max_attempts THEN now() END,
       error = CASE WHEN NOT $6 AND attempts >= max_attempts THEN jsonb_build_object('code', 'ATTEMPTS_EXHAUSTED', 'message', $5::text) END`,
      [reason, stopping],
    );
  }

  /**
   * Writes this attempt's end of the job (`set`: $1..$4 are run, job, attempt, worker; `values` from
   * $5) and settles its run, in one transaction under the run's row lock (settleAfter). Answers
   * whether the write matched (a stale attempt matches nothing).
   */
  private async finish(job: ClaimedJob, set: string, values: unknown[]): Promise<boolean> {
    const { written } = await settleAfter(this.pg, [job.runId], async (c) => {
      const r = await c.query(
        `UPDATE bt_jobs SET ${set} WHERE run_id = $1 AND idx = $2 AND attempts = $3 AND worker = $4 AND status = 'running'`,
        [job.runId, job.idx, job.attempt, this.worker, ...values],
      );
      return r.rowCount === 1;
    });
    return written;
  }

  /**
   * Fails the jobs whose last attempt's lease ran out and settles their runs, in one transaction
   * under those runs' row locks (as `finish`, settleAfter). A claim with no such job (the usual
   * case) does the probe alone.
   */
  private async failExhausted(): Promise<void> {
    const probe = await this.pg.query<{ run_id: string }>(EXHAUSTED_RUNS_SQL);
    if (probe.rows.length === 0) return;
    const runIds = probe.rows.map((r) => r.run_id);
    await settleAfter(this.pg, runIds, async (c) => {
      await c.query(
        `UPDATE bt_jobs SET status = 'failed', finished_at = now(), lease_until = NULL,
                error = jsonb_build_object('code', 'ATTEMPTS_EXHAUSTED', 'message', 'the job''s worker stopped ' || attempts || ' times')
         WHERE run_id = ANY($1::uuid[]) AND ${EXHAUSTED}`,
        [runIds],
      );
      return true;
    });
  }
}
