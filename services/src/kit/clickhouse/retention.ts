/**
 * ClickHouse retention without TTL (Debian's 18.16 has none: added in 19.6): what a service's pass
 * removes from its tables is whole partitions (a metadata change) and, for a table that is not
 * partitioned by time, a mutation (ALTER TABLE ... DELETE, which rewrites every part it touches: one
 * at a time, never while one of the table's is unfinished). Names spliced into statements are the
 * caller's constants; a partition id is spliced only once it is checked to be a month's (YYYYMM).
 */
import type { ClickHouseKitClient } from "./client";

/** Mutations of `table` ClickHouse has not finished (one that keeps failing stays here until killed). */
export async function unfinishedMutations(ch: ClickHouseKitClient, table: string): Promise<number> {
  const rows = await ch.query<{ n: string | number }>(
    `SELECT count() AS n FROM system.mutations WHERE database = currentDatabase() AND table = {table:String} AND is_done = 0`,
    { table },
  );
  return Number(rows[0]?.n ?? 0);
}

/** The UTC month of `at` as toYYYYMM gives it (a partition id): 202612. */
export const yyyymm = (at: Date): number => at.getUTCFullYear() * 100 + at.getUTCMonth() + 1;

/**
 * Of `tables` (each PARTITION BY toYYYYMM of a Date column), the month partitions that ended before
 * `cutoff`'s month began and whose active parts were all written before `cutoff` (system.parts
 * modification_time): a row dated long ago but written since (a fill stamped with market time, a
 * replay) keeps its month until the cutoff passes its write. Oldest first.
 */
export async function monthsEndedBefore(ch: ClickHouseKitClient, tables: readonly string[], cutoff: Date): Promise<Array<{ table: string; partition: string }>> {
  const rows = await ch.query<{ table: string; partition: string }>(
    `SELECT table, partition FROM system.parts
      WHERE database = currentDatabase() AND active AND has({tables:Array(String)}, table)
      GROUP BY table, partition
     HAVING toUInt32(max(modification_time)) < {cutoff:UInt32}
      ORDER BY partition, table`,
    { tables: [...tables], cutoff: Math.floor(cutoff.getTime() / 1000) },
  );
  const before = yyyymm(cutoff);
  return rows.filter((p) => /^\d{6}$/.test(p.partition) && Number(p.partition) < before && tables.includes(p.table));
}

/** Drops the month partitions `monthsEndedBefore` gives; answers `table partition` of each dropped. */
export async function dropMonthsEndedBefore(ch: ClickHouseKitClient, tables: readonly string[], cutoff: Date): Promise<string[]> {
  const dropped: string[] = [];
  for (const p of await monthsEndedBefore(ch, tables, cutoff)) {
    // The partition id is six digits (checked above), the table one of the caller's: nothing else is spliced in.
    await ch.command(`ALTER TABLE ${p.table} DROP PARTITION ${p.partition}`);
    dropped.push(`${p.table} ${p.partition}`);
  }
  return dropped;
}
