/**
 * performance-analytics: what the rollup's tables keep (migration 0009). Run after a completed pass
 * (rollup.ts); it only ever removes what no pass can read again.
 *
 * The change tables (pa_changed_users, pa_changed_symbols) are partitioned by month of changed_at.
 * A pass of rollup `name` reads the changes from its last watermark's `through` less its overlap on
 * (PERF_ROLLUP_OVERLAP_S, at most MAX_OVERLAP_SECONDS: replicas of another release or configuration
 * may use any value up to it), so nothing before `oldest watermark in use - MAX_OVERLAP_SECONDS` is
 * read again. The oldest in use is the minimum over every rollup name in use of its newest watermark
 * (the tables are shared by every rollup of the database; 0008's pa_rollup_watermark rows count too).
 * A name whose newest watermark is older than WATERMARK_IN_USE_SECONDS is not in use (no release
 * runs it any more: a renamed consumer group, a removed configuration) and holds nothing back; were
 * it run again, its pass recomputes every user (rollup.ts, INCREMENTAL_WITHIN_SECONDS), as the
 * changes since its watermark may be gone. A partition is dropped only when its whole month ends by
 * then: judged by the month, not by the newest row it holds, because a row inserted between the
 * look and the drop may land in it.
 *
 * pa_rollup_passes gains a row per pass. Readers take, per name, the newest completed row
 * (watermark.ts read) and the greatest figures version of any row; every figures version a completed
 * row carries was claimed first by a claim row (rollup.ts), so deleting a name's completed rows
 * older than its newest one, claims kept, changes neither answer. That is a mutation rewriting the
 * table's parts on 18.16, so it runs only once `PASS_ROWS_TRIMMED_AFTER` such rows piled up.
 */
import { dropPartitionsEndedBefore, type ClickHouseKitClient } from "../../kit";

/** The greatest overlap a pass may be configured with (PERF_ROLLUP_OVERLAP_S's maximum). */
export const MAX_OVERLAP_SECONDS = 86_400;
/**
 * A rollup name whose newest watermark is older than this (ClickHouse's clock) is not in use: it holds
 * back no partition. Thirty days: far beyond any pass interval a deployment runs (default 5 min), so
 * only a name nothing runs any more, or a rollup stopped for a month, which then recomputes everyone.
 */
export const WATERMARK_IN_USE_SECONDS = 30 * 86_400;
/**
 * A pass reads changes from its watermark only when that is younger than this; an older one
 * recomputes every user. A day below WATERMARK_IN_USE_SECONDS: a pass that started incremental reads
 * its changes within a day, before its name stops holding them back (another name's trim may run
 * meanwhile).
 */
export const INCREMENTAL_WITHIN_SECONDS = WATERMARK_IN_USE_SECONDS - 86_400;
/** Superseded completed passes of a name that make a delete worth its mutation. */
export const PASS_ROWS_TRIMMED_AFTER = 100;
const CHANGE_TABLES = ["pa_changed_users", "pa_changed_symbols"] as const;

export interface Trimmed {
  /** `table partition` of each change-table partition dropped. */
  dropped: string[];
  /** Superseded completed pass rows of the name deleted (0 when below PASS_ROWS_TRIMMED_AFTER). */
  passRows: number;
}

/** Unix seconds before which no pass of a rollup in use reads a change; undefined with no watermark in use. */
export async function changesNeededFrom(ch: ClickHouseKitClient): Promise<number | undefined> {
  const rows = await ch.query<{ oldest: string; names: string }>(
    `SELECT toString(min(newest_through)) AS oldest, toString(count()) AS names FROM (
         SELECT name, argMax(through, version) AS newest_through FROM (
           SELECT name, through, version FROM pa_rollup_passes WHERE complete = 1
           UNION ALL
           SELECT name, through, version FROM pa_rollup_watermark)
         GROUP BY name
        HAVING newest_through >= toUInt32(now()) - {inUse:UInt32})`,
    { inUse: WATERMARK_IN_USE_SECONDS },
  );
  if (!rows[0] || Number(rows[0].names) === 0) return undefined;
  return Number(rows[0].oldest) - MAX_OVERLAP_SECONDS;
}

/**
 * Drops the change-table partitions whose month ended by `neededFrom` (unix seconds): the kit's
 * dropPartitionsEndedBefore, judged by the month alone (no write-time check: a change is stamped when
 * it is written, after every watermark, so none lands in a month that ended before `neededFrom`).
 */
export const dropChangesBefore = (ch: ClickHouseKitClient, neededFrom: number): Promise<string[]> =>
  dropPartitionsEndedBefore(ch, CHANGE_TABLES, new Date(neededFrom * 1000));

/** Deletes rollup `name`'s completed passes older than its newest one, once PASS_ROWS_TRIMMED_AFTER piled up. */
export async function deleteSupersededPasses(ch: ClickHouseKitClient, name: string): Promise<number> {
  const rows = await ch.query<{ newest: string; completed: string }>(
    `SELECT toString(max(version)) AS newest, toString(count()) AS completed FROM pa_rollup_passes WHERE name = {name:String} AND complete = 1`,
    { name },
  );
  const older = Number(rows[0]?.completed ?? 0) - 1;
  if (older < PASS_ROWS_TRIMMED_AFTER) return 0;
  // Only rows below a version that exists: a pass completing meanwhile writes a greater one, kept.
  await ch.command("ALTER TABLE pa_rollup_passes DELETE WHERE name = {name:String} AND complete = 1 AND version < {newest:UInt64}", { name, newest: rows[0].newest });
  return older;
}
