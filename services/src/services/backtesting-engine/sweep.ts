/**
 * The series sweep: deletes the ClickHouse rows no read can return (deletion.ts), a bounded batch
 * a pass, run as the kit's PeriodicDelete (index.ts); it is the only writer of ClickHouse deletes:
 *   - rows of runs deleted from PostgreSQL (DELETE /:id, or past BACKTEST_RETENTION_DAYS, which a
 *     pass deletes first), noted in bt_deleted_runs by the statement that deleted them;
 *   - rows of runs PostgreSQL does not have and never noted: written by an attempt still running
 *     when its run was cancelled and deleted, or left by a version that deleted without a note;
 *   - rows of attempts other than the recorded one (bt_jobs.result_attempt; none for a failed or
 *     cancelled job) of jobs final for more than the grace (an hour by default).
 * The second and third kinds are found in ClickHouse itself, a page of run ids a pass in key order,
 * the cursor wrapping at the end: every row is looked at again, so rows written after a run's delete
 * are found on a later round.
 * A pass issues at most one mutation per table (none when nothing matches), over at most `batch`
 * noted runs plus a page: mutations rewrite every part they touch, so they stay rare whatever
 * clients do. While a table has a mutation ClickHouse has not finished the pass does nothing and
 * says so (PeriodicDelete logs it): mutations never queue up behind a slow one, and a mutation that
 * keeps failing shows in the log instead of piling others behind it. Replicas take turns on an
 * advisory lock: one pass at a time, not one mutation per replica.
 */
import type { ClickHouseKitClient, PostgresClient } from "../../kit";
import {
  countSeries, deletedRuns, deleteExpiredRuns, deleteSeries, existingRuns, forgetDeletedRuns, SERIES_TABLES, seriesRunIds, settledJobsWithOtherAttempts,
  unfinishedMutations, type SeriesDelete,
} from "./deletion";

/** Key space of the sweep's advisory lock ("bt", as the submission lock's) and its key in it. */
const SWEEP_LOCK: [number, number] = [0x6274, 0x7377];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface SweepOptions {
  /** Runs a pass looks at (and deletes) at most. */
  batch: number;
  /** How long a job is final before its other attempts' rows are looked for. */
  graceMs: number;
  /** Finished runs older than this are deleted; 0 keeps them. */
  retentionDays: number;
}

export class SeriesSweep {
  /** The last run id of the previous page ("" : start again from the first). */
  private after = "";
  /** Mutations issued since the start (tests). */
  mutations = 0;

  constructor(private readonly pg: PostgresClient, private readonly ch: ClickHouseKitClient, private readonly opts: SweepOptions) {}

  /** One pass, when no other replica's holds the lock: answers the runs and jobs whose rows it deleted. */
  async pass(): Promise<number> {
    return this.pg.transaction(async (c) => {
      const lock = await c.query<{ ok: boolean }>("SELECT pg_try_advisory_xact_lock($1, $2) AS ok", SWEEP_LOCK);
      // The statements below run on other connections: a run deleted for its age is committed before its rows go.
      return lock.rows[0]?.ok ? this.locked() : 0;
    });
  }

  private async locked(): Promise<number> {
    const { batch, graceMs, retentionDays } = this.opts;
    for (const table of SERIES_TABLES) {
      const unfinished = await unfinishedMutations(this.ch, table);
      if (unfinished > 0) throw new Error(`ClickHouse has ${unfinished} unfinished mutation(s) of ${table} (system.mutations): the sweep waits for them`);
    }
    if (retentionDays > 0) await deleteExpiredRuns(this.pg, retentionDays, batch);
    const noted = await deletedRuns(this.pg, batch);
    const page = await this.nextPage(batch);
    const live = await existingRuns(this.pg, page.filter((id) => UUID.test(id)));
    const gone = page.filter((id) => !live.has(id));
    const d: SeriesDelete = { runIds: [...new Set([...noted, ...gone])], jobs: await settledJobsWithOtherAttempts(this.pg, [...live], graceMs, 10 * batch) };
    let deleted = 0;
    for (const table of SERIES_TABLES) {
      if ((await countSeries(this.ch, table, d)) === 0) continue;
      await deleteSeries(this.ch, table, d);
      this.mutations++;
      deleted = d.runIds.length + d.jobs.length;
    }
    // Only once every table's delete is issued: a failure above leaves them noted for the next pass.
    await forgetDeletedRuns(this.pg, noted);
    return Math.max(deleted, noted.length);
  }

  /**
   * The next `limit` run ids of either table after the cursor. Each table answers its next `limit`;
   * the page stops at the first table's last id when it answered a full page (ids past it may be
   * missing from that table's answer), and the cursor wraps when neither did.
   */
  private async nextPage(limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    let upTo: string | undefined;
    const ids = new Set<string>();
    for (const table of SERIES_TABLES) {
      const got = await seriesRunIds(this.ch, table, this.after, limit);
      got.forEach((id) => ids.add(id));
      if (got.length === limit && (upTo === undefined || got[got.length - 1] < upTo)) upTo = got[got.length - 1];
    }
    const page = [...ids].filter((id) => upTo === undefined || id <= upTo).sort().slice(0, limit);
    this.after = upTo === undefined && page.length < limit ? "" : page[page.length - 1] ?? "";
    return page;
  }
}
