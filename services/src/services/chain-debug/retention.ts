/** Retention without TTL (ClickHouse 18.16): drop the daily partitions (PARTITION BY date) older than `days`, by the kit's dropPartitionsEndedBefore. */
import { dropPartitionsEndedBefore, type ClickHouseKitClient } from "../../kit";

export const DEBUG_TABLES = ["debug_spans", "debug_errors"] as const;

/** Drops the days that ended before `now - days`'s day began (UTC); answers `table YYYY-MM-DD` of each dropped. */
export const dropExpiredPartitions = (ch: ClickHouseKitClient, days: number, now = new Date()): Promise<string[]> =>
  dropPartitionsEndedBefore(ch, DEBUG_TABLES, new Date(now.getTime() - days * 86_400_000));
