/**
 * compliance-monitor's retention on real PostgreSQL (found by session 38's hunt: cm_audit and
 * cm_alerts grew without bound, their triggers refusing every DELETE). Rows past the retention go, a
 * bounded batch a pass, oldest first; everything younger stays tamper-resistant: no DELETE but
 * cm_delete_expired's, none of a row younger than 5 years whatever the setting, no UPDATE or TRUNCATE.
 *
 * cm_position_fills (found in session 39: one row per fill, kept forever) loses rows applied longer
 * ago than COMPLIANCE_POSITION_FILL_RETENTION_DAYS, whose floor is the longest a fill can come back;
 * positions do not move, and a young fill delivered again still moves its position once.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { runPostgresMigrations } from "../../services/src/migrations";
import { createService } from "../../services/src/kit";
import complianceMonitor from "../../services/src/services/compliance-monitor";
import { positionFillRetentionFloorDays } from "../../services/src/services/compliance-monitor/domain";
import { deleteExpired, deletePositionFillsPastRetention, positionAfterFill } from "../../services/src/services/compliance-monitor/data";

const srv = useServers("postgres");
let pool: InstanceType<typeof pg.Pool>;
const run = randomUUID();
const SEVEN_YEARS = 2_557;
const ages = { old1: 3_000, old2: 2_900, old3: 2_800, sixYears: 2_200, recent: 1 } as const;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 2 });
  await runPostgresMigrations(pool);
  for (const [name, days] of Object.entries(ages)) {
    await pool.query(
      `INSERT INTO cm_audit (event_id, source, kind, user_id, symbol, payload, recorded_at)
       VALUES ($1, 'trading.orders', 'placed', 'u-ret', 'BTCUSDT', '{}', now() - make_interval(days => $2))`,
      [`${name}-${run}`, days],
    );
    await pool.query(
      `INSERT INTO cm_alerts (alert_id, rule, user_id, symbol, severity, message, evidence, event_ts, raised_at)
       VALUES ($1, 'SPOOFING', 'u-ret', 'BTCUSDT', 'high', 'm', '[]', now(), now() - make_interval(days => $2))`,
      [`SPOOFING:${name}-${run}`, days],
    );
  }
}, 120_000);
afterAll(async () => pool?.end());

const left = async (table: "cm_audit" | "cm_alerts") => {
  const key = table === "cm_audit" ? "event_id" : "alert_id";
  const r = await pool.query<{ k: string }>(`SELECT ${key} AS k FROM ${table} WHERE ${key} LIKE $1 ORDER BY ${key}`, [`%${run}`]);
  return r.rows.map((x) => x.k.replace(`-${run}`, "").replace("SPOOFING:", ""));
};
const refused = /append-only/;

describe("compliance trail retention", () => {
  it("deletes rows past the retention, a bounded batch a pass, oldest first; keeps the younger ones", async () => {
    for (const table of ["cm_audit", "cm_alerts"] as const) {
      expect(await deleteExpired(pool, table, SEVEN_YEARS, 2)).toBe(2);
      expect(await left(table)).toEqual(["old3", "recent", "sixYears"]);
      while ((await deleteExpired(pool, table, SEVEN_YEARS, 2)) > 0);
      expect(await left(table)).toEqual(["recent", "sixYears"]);
    }
  });

  it("younger rows stay tamper-resistant: no other DELETE, none under 5 years whatever the setting, no UPDATE or TRUNCATE", async () => {
    const c = await pool.connect();
    try {
      await expect(c.query("DELETE FROM cm_audit WHERE event_id = $1", [`sixYears-${run}`])).rejects.toThrow(refused);
      await expect(c.query("DELETE FROM cm_alerts WHERE alert_id = $1", [`SPOOFING:recent-${run}`])).rejects.toThrow(refused);
      // The setting the sweep uses, set by hand: below the floor of 5 years it allows nothing (not even
      // the 6-year-old row); at the floor, nothing younger than 5 years.
      const byHand = async (days: string, eventId: string) => {
        await c.query("BEGIN");
        try {
          await c.query("SELECT set_config('cm.retention_days', $1, true)", [days]);
          await c.query("DELETE FROM cm_audit WHERE event_id = $1", [eventId]);
        } finally {
          await c.query("ROLLBACK");
        }
      };
      await expect(byHand("1", `sixYears-${run}`)).rejects.toThrow(refused);
      await expect(byHand("1825", `recent-${run}`)).rejects.toThrow(refused);
      await expect(deleteExpired(c, "cm_alerts", 1, 10)).rejects.toThrow(refused);
      await expect(c.query("UPDATE cm_audit SET kind = 'x' WHERE event_id = $1", [`sixYears-${run}`])).rejects.toThrow(refused);
      await expect(c.query("UPDATE cm_alerts SET message = 'x' WHERE alert_id = $1", [`SPOOFING:sixYears-${run}`])).rejects.toThrow(refused);
      await expect(c.query("TRUNCATE cm_alerts")).rejects.toThrow(refused);
      // The sweep's setting does not outlive its statement.
      expect((await c.query("SELECT coalesce(current_setting('cm.retention_days', true), '') AS v")).rows[0].v).toBe("");
    } finally {
      c.release();
    }
    expect(await left("cm_audit")).toEqual(["recent", "sixYears"]);
    expect(await left("cm_alerts")).toEqual(["recent", "sixYears"]);
  });
});

describe("cm_position_fills retention", () => {
  const user = `u-pf-${run}`;
  /** A fill recorded as compliance-monitor records it: its audit row (the trigger of 0199 moves the position). */
  const recordFill = (eventId: string, fillId: string, side: "buy" | "sell", quantity: string) =>
    pool.query(
      `INSERT INTO cm_audit (event_id, source, kind, user_id, symbol, payload) VALUES ($1, 'trading.executions', 'fill', $2, 'BTCUSDT', $3)`,
      [eventId, user, JSON.stringify({ source: "fill", fill: { fillId, orderId: `o-${fillId}`, userId: user, symbol: "BTCUSDT", side, quantity, price: "100", fee: "0", liquidity: "taker", ts: 0 } })],
    );
  const position = async () => (await pool.query<{ q: string }>("SELECT quantity::text AS q FROM cm_positions WHERE user_id = $1 AND symbol = 'BTCUSDT'", [user])).rows[0]?.q;
  const fillsLeft = async () =>
    (await pool.query<{ f: string }>("SELECT fill_id AS f FROM cm_position_fills WHERE user_id = $1 ORDER BY fill_id", [user])).rows.map((r) => r.f.replace(`-${run}`, ""));
  const appliedDaysAgo = (fill: string, days: number) =>
    pool.query("UPDATE cm_position_fills SET applied_at = now() - make_interval(days => $2) WHERE fill_id = $1", [`${fill}-${run}`, days]);

  it("deletes rows applied past the retention, a bounded batch a pass, oldest first; keeps younger ones; positions unchanged; a young fill again counts once", async () => {
    await recordFill(`e-old1-${run}`, `old1-${run}`, "buy", "500");
    await recordFill(`e-old2-${run}`, `old2-${run}`, "sell", "120.5");
    await recordFill(`e-old3-${run}`, `old3-${run}`, "buy", "7");
    await recordFill(`e-young-${run}`, `young-${run}`, "buy", "300");
    await recordFill(`e-edge-${run}`, `edge-${run}`, "buy", "1");
    await appliedDaysAgo("old1", 200);
    await appliedDaysAgo("old2", 150);
    await appliedDaysAgo("old3", 91);
    await appliedDaysAgo("young", 10);
    await appliedDaysAgo("edge", 89);
    expect(await position()).toBe("687.5");

    expect(await deletePositionFillsPastRetention(pool, 90, 2)).toBeGreaterThanOrEqual(1);
    expect(await fillsLeft()).not.toContain("old1");
    while ((await deletePositionFillsPastRetention(pool, 90, 2)) > 0);
    expect(await fillsLeft()).toEqual(["edge", "young"]);
    // cm_positions is a running total, not a sum over the rows: the sweep moved no position.
    expect(await position()).toBe("687.5");

    // The young fill delivered again under another event id (its first one is deduped by cm_audit):
    // its row is there, so it moves nothing and is reported as not applied.
    await recordFill(`e-young-again-${run}`, `young-${run}`, "buy", "300");
    expect(await position()).toBe("687.5");
    expect(await positionAfterFill(pool, `young-${run}`, `e-young-again-${run}`)).toEqual({ quantity: "687.5", applied: false });
    // A new fill still moves it.
    await recordFill(`e-new-${run}`, `new-${run}`, "sell", "87.5");
    expect(await position()).toBe("600.0");
  });

  it("refuses at start a retention shorter than the longest a fill can come back, naming the variable", async () => {
    const env = { ...srv.env, LOG_LEVEL: "silent", KAFKA_BROKERS: srv.env.KAFKA_BROKERS ?? "127.0.0.1:1" };
    // trading.executions keeps 30 days and rolls its segments daily (both declared in migrations/kafka.ts),
    // the replay window (1 h) and a day: 33 (it was 46 with a 14-day roll assumed to be Redpanda's default).
    await expect(createService(complianceMonitor, { env: { ...env, COMPLIANCE_POSITION_FILL_RETENTION_DAYS: "32" }, defaultMetrics: false })).rejects.toThrow(
      /COMPLIANCE_POSITION_FILL_RETENTION_DAYS \(32\) must be at least 33: trading\.executions/,
    );
    // The floor follows the replay window: none gives 32 days, a day's 33, a millisecond more 34.
    const executions = { retentionMs: 30 * 86_400_000, segmentMs: 86_400_000 };
    expect([0, 3_600_000, 86_400_000, 86_400_001].map((w) => positionFillRetentionFloorDays(executions, w))).toEqual([32, 33, 33, 34]);
  });
});
