/**
 * Settling runs: a run is succeeded, failed when one of its jobs failed, or cancelled when its owner
 * cancelled it (its unfinished jobs `cancelled`), once every job is final.
 * Whatever makes a job final settles its run in the same transaction, under the run's row lock
 * (`settleAfter`, queue.ts). `StrandedRunRepair` settles the runs a path that did not left open with
 * every job final (a replica of an older release during a rolling deploy), and marks `running` the
 * runs such a path left `queued` while their jobs ran: a bounded pass over the open runs (index
 * bt_runs_open), at most once an interval per replica, so a claim pays a clock read for it and
 * nothing else. The same pass cancels the open runs of deleted accounts (user-management's tombstones),
 * as their owners' cancel would: a run queued before its owner's deletion (the deletion waits for a
 * submit that passed its check, kit lockAccountForWrite) is not run for an account nobody can see.
 */
import type { PostgresClient, Queryable } from "../../kit";

/**
 * Runs `write` and settles those of `runIds` whose jobs are all final, in one transaction under the
 * runs' row locks, taken in id order (two transactions locking overlapping runs wait rather than
 * deadlock). The lock serializes the jobs of one run that end together on several replicas:
 * whichever comes second reads (a statement after the lock, its own snapshot) what the first
 * committed, so the last job's transaction always sees every job final; and a replica killed in
 * between leaves neither written. When `write` answers false (it matched nothing), nothing is settled.
 * With `skipLocked`, runs another transaction holds are left out (settled by it, or by a later call)
 * rather than waited on.
 */
export async function settleAfter(
  pg: PostgresClient,
  runIds: string[],
  write: (c: Queryable) => Promise<boolean>,
  opts: { skipLocked?: boolean } = {},
): Promise<{ written: boolean; settled: number }> {
  return pg.transaction(async (c) => {
    const locked = await c.query<{ id: string }>(
      `SELECT id FROM bt_runs WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE${opts.skipLocked ? " SKIP LOCKED" : ""}`,
      [runIds],
    );
    if (opts.skipLocked) runIds = locked.rows.map((r) => r.id);
    if (!(await write(c))) return { written: false, settled: 0 };
    const r = await c.query(
      `UPDATE bt_runs r SET finished_at = now(),
              status = CASE WHEN EXISTS (SELECT 1 FROM bt_jobs j WHERE j.run_id = r.id AND j.status = 'cancelled') THEN 'cancelled'
                            WHEN EXISTS (SELECT 1 FROM bt_jobs j WHERE j.run_id = r.id AND j.status = 'failed') THEN 'failed' ELSE 'succeeded' END
       WHERE r.id = ANY($1::uuid[]) AND r.status IN ('queued', 'running')
         AND NOT EXISTS (SELECT 1 FROM bt_jobs j WHERE j.run_id = r.id AND j.status IN ('queued', 'running'))`,
      [runIds],
    );
    return { written: true, settled: r.rowCount ?? 0 };
  });
}

/**
 * Up to $1 runs still open with no unfinished job (exported for the EXPLAIN in
 * tests/services/backtesting-queue.test.ts): it reads the open runs on bt_runs_open (migration
 * 0394), not the finished ones; each open run costs one probe of bt_jobs' primary key.
 */
export const STRANDED_RUNS_SQL = `SELECT r.id FROM bt_runs r
  WHERE r.status IN ('queued', 'running')
    AND NOT EXISTS (SELECT 1 FROM bt_jobs j WHERE j.run_id = r.id AND j.status IN ('queued', 'running'))
  LIMIT $1`;

/** Up to $1 open runs (bt_runs_open) whose owner's account was deleted: one probe of deleted_users' key each. */
export const DELETED_OWNERS_RUNS_SQL = `SELECT r.id FROM bt_runs r
  WHERE r.status IN ('queued', 'running') AND EXISTS (SELECT 1 FROM deleted_users d WHERE d.user_id = r.owner_id)
  LIMIT $1`;

/**
 * Cancels the unfinished jobs of those of runs $1 this transaction holds (settleAfter locked them;
 * SKIP LOCKED leaves out the ones another transaction holds, which a later pass cancels).
 */
const CANCEL_HELD_RUNS_SQL = `UPDATE bt_jobs SET status = 'cancelled', finished_at = now(), lease_until = NULL
  WHERE run_id IN (SELECT id FROM bt_runs WHERE id = ANY($1::uuid[]) FOR UPDATE SKIP LOCKED) AND status IN ('queued', 'running')`;

/**
 * Marks `running` up to $1 runs still `queued` whose jobs have started (one running or final): a
 * replica of a release before the claim marked its run in the same statement could be killed
 * between the two, and the run said `queued` until its last job ended. Its start is its first
 * job's. A run another transaction holds is skipped (a claim marking it, a job's end settling it).
 */
export const STARTED_QUEUED_RUNS_SQL = `UPDATE bt_runs r
  SET status = 'running', started_at = coalesce(r.started_at, (SELECT min(j.started_at) FROM bt_jobs j WHERE j.run_id = r.id), now())
  WHERE r.id IN (SELECT q.id FROM bt_runs q
                 WHERE q.status = 'queued' AND EXISTS (SELECT 1 FROM bt_jobs j WHERE j.run_id = q.id AND j.status <> 'queued')
                 LIMIT $1 FOR UPDATE SKIP LOCKED)
    AND r.status = 'queued'`;

export class StrandedRunRepair {
  private lastPassAt = Number.NEGATIVE_INFINITY;
  /** Passes made (each reads STRANDED_RUNS_SQL and runs STARTED_QUEUED_RUNS_SQL once). */
  passes = 0;
  /** Runs left `queued` with a job started that passes marked `running`. */
  markedRunning = 0;
  /** Open runs of deleted accounts that passes cancelled. */
  cancelledOfDeleted = 0;

  constructor(
    private readonly pg: PostgresClient,
    private readonly everyMs: number,
    private readonly batch: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Makes a pass when the last one began `everyMs` ago or more (the replica's first call makes one);
   * answers the runs it settled, or undefined when none was due. A failed pass counts as made: the
   * next is an interval later, not on the next claim.
   */
  async runIfDue(): Promise<number | undefined> {
    const at = this.now();
    if (at - this.lastPassAt < this.everyMs) return undefined;
    this.lastPassAt = at;
    return this.pass();
  }

  /**
   * Settles up to `batch` stranded runs, as a job's end settles its run (same lock, same statement),
   * then marks `running` up to `batch` runs left `queued` whose jobs have started, then cancels up to
   * `batch` open runs of deleted accounts.
   * A run locked by another transaction is skipped, not waited on: the claim this pass runs in never
   * waits on a run it does not claim from, and the lock's holder (a job's end, another replica's
   * pass) settles it, or the next pass does.
   */
  async pass(): Promise<number> {
    this.passes++;
    const { rows } = await this.pg.query<{ id: string }>(STRANDED_RUNS_SQL, [this.batch]);
    const settled = rows.length === 0 ? 0 : (await settleAfter(this.pg, rows.map((r) => r.id), async () => true, { skipLocked: true })).settled;
    const started = await this.pg.query(STARTED_QUEUED_RUNS_SQL, [this.batch]);
    this.markedRunning += started.rowCount ?? 0;
    const gone = (await this.pg.query<{ id: string }>(DELETED_OWNERS_RUNS_SQL, [this.batch])).rows.map((r) => r.id);
    if (gone.length > 0) {
      const write = async (c: Queryable) => ((await c.query(CANCEL_HELD_RUNS_SQL, [gone])).rowCount ?? 0) > 0;
      this.cancelledOfDeleted += (await settleAfter(this.pg, gone, write, { skipLocked: true })).settled;
    }
    return settled;
  }
}
