/**
 * compliance-monitor's retention on real PostgreSQL (found by session 38's hunt: cm_audit and
 * cm_alerts grew without bound, their triggers refusing every DELETE). Rows past the retention go, a
 * bounded batch a pass, oldest first; everything younger stays tamper-resistant: no DELETE but
 * cm_delete_expired's, none of a row younger than 5 years whatever the setting, no UPDATE or TRUNCATE.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { runPostgresMigrations } from "../../services/src/migrations";
import { deleteExpired } from "../../services/src/services/compliance-monitor/data";

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
