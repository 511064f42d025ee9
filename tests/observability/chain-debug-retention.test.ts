/**
 * chain-debug's retention (retention.ts) on a real ClickHouse 18.16, in a database of its own: the
 * daily partitions (PARTITION BY date) of debug_spans and debug_errors whose day ended before
 * `now - DEBUG_RETENTION_DAYS`'s began are dropped by the kit's dropPartitionsEndedBefore (one
 * implementation with performance-analytics' and ai-chain-analytics' month partitions); the cutoff's
 * day and the days after stay.
 */
import { describe, expect, it } from "vitest";
import { useMigratedClickHouse } from "../harness/clickhouse-database";
import { useServers } from "../harness/shared";
import { dropExpiredPartitions } from "../../services/src/services/chain-debug/retention";

const srv = useServers("clickhouse");
const own = useMigratedClickHouse(srv, "debug_retention");

const days = async (table: string) =>
  (await own.ch.query<{ d: string }>("SELECT DISTINCT toString(date) AS d FROM " + table + " ORDER BY d")).map((r) => r.d);

describe("chain-debug: daily partitions past DEBUG_RETENTION_DAYS", () => {
  it("drops the days that ended before the cutoff's day, in both tables; the cutoff's day and later stay", async () => {
    const spanDays = ["2026-11-01", "2026-11-29", "2026-11-30", "2026-12-01"];
    await own.ch.insert("debug_spans", spanDays.map((date, i) => ({ date, trace_id: `t${i}`, span_id: `s${i}`, link_trace_ids: [] })));
    await own.ch.insert("debug_errors", ["2026-11-02", "2026-12-01"].map((date, i) => ({ date, at: `${date} 00:00:00`, fingerprint: `f${i}` })));
    // 7 days before 2026-12-07T12:00Z is 2026-11-30T12:00Z: 2026-11-30 has not ended before its own start.
    const dropped = await dropExpiredPartitions(own.ch, 7, new Date("2026-12-07T12:00:00Z"));
    expect(dropped).toEqual(["debug_spans 2026-11-01", "debug_errors 2026-11-02", "debug_spans 2026-11-29"]);
    expect(await days("debug_spans")).toEqual(["2026-11-30", "2026-12-01"]);
    expect(await days("debug_errors")).toEqual(["2026-12-01"]);
    // Nothing more is past it: a second pass drops nothing.
    expect(await dropExpiredPartitions(own.ch, 7, new Date("2026-12-07T12:00:00Z"))).toEqual([]);
  });
});
