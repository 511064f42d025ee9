/** Retention without TTL (ClickHouse 18.16): drop the daily partitions older than `days`. */
import type { ClickHouseKitClient } from "../../kit";

export const DEBUG_TABLES = ["debug_spans", "debug_errors"] as const;

export async function dropExpiredPartitions(ch: ClickHouseKitClient, days: number, now = new Date()): Promise<string[]> {
  const cutoff = new Date(now.getTime() - days * 86_400_000).toISOString().slice(0, 10);
  const parts = await ch.query<{ table: string; partition: string }>(
    `SELECT DISTINCT table, partition FROM system.parts WHERE database = currentDatabase() AND active AND table IN ('debug_spans', 'debug_errors')`,
  );
  const dropped: string[] = [];
  for (const p of parts) {
    const day = p.partition.replace(/'/g, "");
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || day >= cutoff) continue;
    const table = DEBUG_TABLES.find((t) => t === p.table)!;
    // A partition id cannot be a query parameter; `day` is a validated YYYY-MM-DD from system.parts.
    await ch.command(`ALTER TABLE ${table} DROP PARTITION '${day}'`);
    dropped.push(`${table}/${day}`);
  }
  return dropped;
}
