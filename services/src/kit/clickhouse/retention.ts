/**
 * ClickHouse retention without TTL (Debian's 18.16 has none: added in 19.6): what a service's pass
 * removes from its tables is whole partitions (a metadata change; months or days) and, for a table that is not
 * partitioned by time, a mutation (ALTER TABLE ... DELETE, which rewrites every part it touches: one
 * at a time, never while one of the table's is unfinished). Names spliced into statements are the
 * caller's constants; a partition id is spliced only once it is checked to be a month's (YYYYMM) or a day's.
 */
import type { ClickHouseKitClient } from "./client";

/** A mutation ClickHouse has not finished, as system.mutations shows it. */
export interface UnfinishedMutation {
  table: string;
  mutationId: string;
  command: string;
  /** Seconds since it was issued, by the server's clock. */
  ageS: number;
  /**
   * Why its latest attempt failed: "" while none has; undefined where the server does not tell (Debian's
   * 18.16: its system.mutations has no latest_fail_reason, so a failing mutation looks like a slow one).
   */
  failReason: string | undefined;
}

/** Whether a client's server has system.mutations.latest_fail_reason, asked once a client. */
const failReasonColumn = new WeakMap<ClickHouseKitClient, boolean>();

/**
 * The mutations of `tables` ClickHouse has not finished (one that keeps failing stays listed until
 * killed, or on 18.16, which has no KILL MUTATION, until its file is removed).
 */
export async function unfinishedMutationsOf(ch: ClickHouseKitClient, tables: readonly string[]): Promise<UnfinishedMutation[]> {
  let tellsReason = failReasonColumn.get(ch);
  if (tellsReason === undefined) {
    tellsReason = (await ch.query("SELECT name FROM system.columns WHERE database = 'system' AND table = 'mutations' AND name = 'latest_fail_reason'")).length > 0;
    failReasonColumn.set(ch, tellsReason);
  }
  const rows = await ch.query<{ table: string; mutation_id: string; command: string; age_s: number | string; reason: string }>(
    `SELECT table, mutation_id, command, toUnixTimestamp(now()) - toUnixTimestamp(create_time) AS age_s, ${tellsReason ? "latest_fail_reason" : "''"} AS reason
       FROM system.mutations WHERE database = currentDatabase() AND has({tables:Array(String)}, table) AND is_done = 0`,
    { tables: [...tables] },
  );
  return rows.map((m) => ({ table: m.table, mutationId: m.mutation_id, command: m.command, ageS: Number(m.age_s), failReason: tellsReason ? m.reason : undefined }));
}

/** How many mutations of `table` ClickHouse has not finished (unfinishedMutationsOf's). */
export async function unfinishedMutations(ch: ClickHouseKitClient, table: string): Promise<number> {
  return (await unfinishedMutationsOf(ch, [table])).length;
}

/** The UTC month of `at` as toYYYYMM gives it (a partition id): 202612. */
export const yyyymm = (at: Date): number => at.getUTCFullYear() * 100 + at.getUTCMonth() + 1;

/**
 * A partition id a pass may drop, as system.parts gives it, and its DROP PARTITION literal: a month's
 * (toYYYYMM of a Date: 202612) or a day's (a Date column: '2026-12-06', quoted or not); undefined for
 * any other. `ended(cutoff)`: whether its month or day ended before `cutoff`'s (UTC) began.
 */
function partitionPeriod(partition: string): { literal: string; ended: (cutoff: Date) => boolean } | undefined {
  if (/^\d{6}$/.test(partition)) return { literal: partition, ended: (cutoff) => Number(partition) < yyyymm(cutoff) };
  const day = /^'?(\d{4}-\d{2}-\d{2})'?$/.exec(partition)?.[1];
  return day ? { literal: `'${day}'`, ended: (cutoff) => day < cutoff.toISOString().slice(0, 10) } : undefined;
}

/**
 * Of `tables` (each partitioned by month, toYYYYMM of a Date column, or by day, a Date column), the
 * partitions whose month or day ended before `cutoff`'s began and, with `writtenBefore`, whose active
 * parts were all written before it (system.parts modification_time): a row dated long ago but written
 * since (a fill stamped with market time, a replay) keeps its partition until then. Oldest first.
 */
export async function partitionsEndedBefore(
  ch: ClickHouseKitClient,
  tables: readonly string[],
  cutoff: Date,
  opts: { writtenBefore?: Date } = {},
): Promise<Array<{ table: string; partition: string; literal: string }>> {
  const written = opts.writtenBefore ? "HAVING toUInt32(max(modification_time)) < {written:UInt32}" : "";
  const rows = await ch.query<{ table: string; partition: string }>(
    `SELECT table, partition FROM system.parts
      WHERE database = currentDatabase() AND active AND has({tables:Array(String)}, table)
      GROUP BY table, partition ${written}
      ORDER BY partition, table`,
    { tables: [...tables], ...(opts.writtenBefore ? { written: Math.floor(opts.writtenBefore.getTime() / 1000) } : {}) },
  );
  return rows.flatMap((p) => {
    const period = partitionPeriod(p.partition);
    return period?.ended(cutoff) && tables.includes(p.table) ? [{ table: p.table, partition: p.partition.replace(/'/g, ""), literal: period.literal }] : [];
  });
}

/** Drops the partitions `partitionsEndedBefore` gives; answers `table partition` of each dropped. */
export async function dropPartitionsEndedBefore(ch: ClickHouseKitClient, tables: readonly string[], cutoff: Date, opts: { writtenBefore?: Date } = {}): Promise<string[]> {
  const dropped: string[] = [];
  for (const p of await partitionsEndedBefore(ch, tables, cutoff, opts)) {
    // The literal is six digits or a quoted YYYY-MM-DD (checked above), the table one of the caller's: nothing else is spliced in.
    await ch.command(`ALTER TABLE ${p.table} DROP PARTITION ${p.literal}`);
    dropped.push(`${p.table} ${p.partition}`);
  }
  return dropped;
}

/** The month partitions of `tables` that ended before `cutoff`'s month began and were not written since `cutoff`, dropped. */
export const dropMonthsEndedBefore = (ch: ClickHouseKitClient, tables: readonly string[], cutoff: Date): Promise<string[]> =>
  dropPartitionsEndedBefore(ch, tables, cutoff, { writtenBefore: cutoff });
