/**
 * Data access for deleting backtests: a run's PostgreSQL rows (bt_jobs go with their run, ON DELETE
 * CASCADE) and the ClickHouse rows no read can return. PostgreSQL is always deleted first: reads
 * join ClickHouse on the attempt PostgreSQL recorded (store.ts), so ClickHouse rows whose run or
 * attempt PostgreSQL no longer names are inert. A deleted run that ever ran is noted in
 * bt_deleted_runs by the statement that deletes it, for the series sweep (sweep.ts), the only
 * writer of ClickHouse deletes: they are mutations (ALTER TABLE ... DELETE, 18.16 and 24.x),
 * asynchronous and rewriting every part they touch (measured with bench/series-sweep.ts: 10M curve
 * rows merged into one part, about 12 s of a core each), so they are batched, at most one per table
 * a pass, issued only when something matches and never while an earlier one is unfinished.
 */
import type { ClickHouseKitClient, PostgresClient } from "../../kit";

/** The ClickHouse tables of a job attempt's series (store.ts writes both). */
export const SERIES_TABLES = ["bt_curves", "bt_trades"] as const;

const FINAL = `('succeeded', 'failed', 'cancelled')`;

/**
 * Deletes `ownerId`'s run `id` when it is final, in one statement (its jobs by cascade), noting it in
 * bt_deleted_runs when any of its jobs was ever claimed (only then can ClickHouse hold rows of it):
 * answers whether one was, its status when it is still open, or undefined when the owner has no such
 * run. The status test is in the DELETE itself, so a run cannot start between the test and the
 * delete; an open run that became final in between is deleted on the next try.
 */
export async function deleteFinishedRun(pg: PostgresClient, id: string, ownerId: string): Promise<{ ran: boolean } | { open: string } | undefined> {
  for (let tries = 0; tries < 3; tries++) {
    // The outer SELECT reads the statement's snapshot, where the cascaded jobs are still visible.
    const gone = await pg.query<{ ran: boolean }>(
      `WITH gone AS (DELETE FROM bt_runs WHERE id = $1 AND owner_id = $2 AND status IN ${FINAL} RETURNING id),
            ran AS (SELECT gone.id, EXISTS (SELECT 1 FROM bt_jobs j WHERE j.run_id = gone.id AND j.attempts > 0) AS ran FROM gone),
            noted AS (INSERT INTO bt_deleted_runs (run_id) SELECT id FROM ran WHERE ran ON CONFLICT DO NOTHING)
       SELECT ran FROM ran`,
      [id, ownerId],
    );
    if (gone.rows[0]) return { ran: gone.rows[0].ran };
    const left = await pg.query<{ status: string }>(`SELECT status FROM bt_runs WHERE id = $1 AND owner_id = $2`, [id, ownerId]);
    if (!left.rows[0]) return undefined;
    if (left.rows[0].status === "queued" || left.rows[0].status === "running") return { open: left.rows[0].status };
  }
  return undefined;
}

/** Deletes up to `limit` runs finished more than `days` days ago, oldest first (index of migration 0412), noting each in bt_deleted_runs. */
export async function deleteExpiredRuns(pg: PostgresClient, days: number, limit: number): Promise<void> {
  await pg.query(
    `WITH gone AS (DELETE FROM bt_runs WHERE id IN (
       SELECT id FROM bt_runs WHERE status IN ${FINAL} AND finished_at < now() - $1 * interval '1 day'
       ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)
     RETURNING id)
     INSERT INTO bt_deleted_runs (run_id) SELECT id FROM gone ON CONFLICT DO NOTHING`,
    [days, limit],
  );
}

/** Up to `limit` deleted runs whose ClickHouse rows are still to go, oldest first. */
export async function deletedRuns(pg: PostgresClient, limit: number): Promise<string[]> {
  const r = await pg.query<{ id: string }>(`SELECT run_id::text AS id FROM bt_deleted_runs ORDER BY deleted_at LIMIT $1`, [limit]);
  return r.rows.map((row) => row.id);
}

/** Forgets deleted runs whose ClickHouse rows' delete has been issued. */
export async function forgetDeletedRuns(pg: PostgresClient, ids: string[]): Promise<void> {
  if (ids.length > 0) await pg.query(`DELETE FROM bt_deleted_runs WHERE run_id = ANY($1::uuid[])`, [ids]);
}

/** Those of `ids` (canonical UUID text) that are runs in PostgreSQL. */
export async function existingRuns(pg: PostgresClient, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const r = await pg.query<{ id: string }>(`SELECT id::text AS id FROM bt_runs WHERE id = ANY($1::uuid[])`, [ids]);
  return new Set(r.rows.map((row) => row.id));
}

/** A job of which ClickHouse may hold rows no read returns: `kept` is the attempt read (null: none). */
export interface SettledJob { runId: string; job: number; kept: number | null }

/**
 * Jobs of `runIds` final for more than `graceMs` with an attempt other than the recorded one: attempts
 * are numbered 1..attempts, and a succeeded job's recorded one is its last, so a succeeded job tried
 * more than once, or a failed or cancelled job that ran (none recorded). The grace lets an attempt that lost
 * its lease while writing its rows finish writing them before they are looked for. At most `limit`.
 */
export async function settledJobsWithOtherAttempts(pg: PostgresClient, runIds: string[], graceMs: number, limit: number): Promise<SettledJob[]> {
  if (runIds.length === 0) return [];
  const r = await pg.query<{ run_id: string; idx: number; result_attempt: number | null }>(
    `SELECT run_id::text AS run_id, idx, result_attempt FROM bt_jobs
      WHERE run_id = ANY($1::uuid[]) AND status IN ${FINAL} AND finished_at < now() - $2 * interval '1 millisecond'
        AND attempts > CASE WHEN result_attempt IS NULL THEN 0 ELSE 1 END
      ORDER BY run_id, idx LIMIT $3`,
    [runIds, graceMs, limit],
  );
  return r.rows.map((row) => ({ runId: row.run_id, job: row.idx, kept: row.result_attempt }));
}

/** Mutations of `table` ClickHouse has not finished: the kit's (kit/clickhouse/retention.ts), shared with ai-chain-analytics' retention. */
export { unfinishedMutations } from "../../kit";

/** Up to `limit` distinct run ids of `table` after `after`, in key order (a range of its primary key). */
export async function seriesRunIds(ch: ClickHouseKitClient, table: (typeof SERIES_TABLES)[number], after: string, limit: number): Promise<string[]> {
  const rows = await ch.query<{ run_id: string }>(
    `SELECT DISTINCT run_id FROM ${table} WHERE run_id > {after:String} ORDER BY run_id LIMIT {limit:UInt32}`,
    { after, limit },
  );
  return rows.map((r) => r.run_id);
}

/**
 * What a series delete removes: every row of `runIds`, and the rows of `jobs`' attempts other than
 * their kept one. Keys are strings ("run/job", "run/job/attempt") so that one Array(String)
 * parameter carries them on both of the kit's bindings (has(): IN with an array parameter is not
 * portable between 18.16 and 24.x).
 */
export interface SeriesDelete { runIds: string[]; jobs: SettledJob[] }

function condition(d: SeriesDelete): { where: string; params: Record<string, unknown> } {
  const parts: string[] = [];
  const params: Record<string, unknown> = {};
  if (d.runIds.length > 0) {
    parts.push(`has({runs:Array(String)}, run_id)`);
    params.runs = d.runIds;
  }
  if (d.jobs.length > 0) {
    const kept = d.jobs.flatMap((j) => (j.kept === null ? [] : [`${j.runId}/${j.job}/${j.kept}`]));
    // An empty array literal has no element type on 18.16: the kept test is left out when nothing is kept.
    const notKept = kept.length > 0 ? ` AND NOT has({kept:Array(String)}, concat(run_id, '/', toString(job), '/', toString(attempt)))` : "";
    parts.push(`(has({jobs:Array(String)}, concat(run_id, '/', toString(job)))${notKept})`);
    params.jobs = d.jobs.map((j) => `${j.runId}/${j.job}`);
    if (kept.length > 0) params.kept = kept;
  }
  return { where: parts.join(" OR "), params };
}

/** Rows of `table` that `d` would delete (a read, so that no mutation is issued for nothing). */
export async function countSeries(ch: ClickHouseKitClient, table: (typeof SERIES_TABLES)[number], d: SeriesDelete): Promise<number> {
  const { where, params } = condition(d);
  if (!where) return 0;
  // The IN on the key reads only those runs' ranges (has() alone reads the whole table).
  const scope = [...new Set([...d.runIds, ...d.jobs.map((j) => j.runId)])];
  const rows = await ch.query<{ n: string | number }>(
    `SELECT count() AS n FROM ${table} WHERE run_id IN (SELECT arrayJoin({scope:Array(String)})) AND (${where})`,
    { ...params, scope },
  );
  return Number(rows[0]?.n ?? 0);
}

/** One mutation on `table` deleting what `d` names (nothing is issued when `d` is empty). */
export async function deleteSeries(ch: ClickHouseKitClient, table: (typeof SERIES_TABLES)[number], d: SeriesDelete): Promise<void> {
  const { where, params } = condition(d);
  if (where) await ch.command(`ALTER TABLE ${table} DELETE WHERE ${where}`, params);
}
