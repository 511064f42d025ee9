/**
 * compliance-monitor's reads on real PostgreSQL read the rows they answer (found by session 38's hunt):
 * - a trader's own alerts (`GET /alerts/mine`) and the admins' list, not every alert of every user.
 *   cm_alerts is append-only and grows at the order rate of whoever trips the rules (a trader placing
 *   and cancelling large orders away from the touch raises an alert per order); before migration 0421
 *   each read scanned and sorted the whole table.
 * - the replay on start (the last hour of the audit trail), not the whole trail (migration 0422).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { runPostgresMigrations } from "../../services/src/migrations";
import type { Queryable } from "../../services/src/kit";
import { listAlerts, recentAudit } from "../../services/src/services/compliance-monitor/data";

const srv = useServers("postgres");
let pool: InstanceType<typeof pg.Pool>;
const OTHERS = 30_000;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: srv.postgres.url, max: 2 });
  await runPostgresMigrations(pool);
  await pool.query(
    `INSERT INTO cm_alerts (alert_id, rule, user_id, symbol, severity, message, evidence, event_ts, raised_at)
     SELECT 'SPOOFING:other-' || g || '-' || $1, 'SPOOFING', 'u-' || (g % 3000), 'BTCUSDT', 'high', 'large order cancelled', '[]'::jsonb,
            now() - make_interval(secs => g), now() - make_interval(secs => g)
       FROM generate_series(1, $2::int) AS g`,
    [randomUUID(), OTHERS],
  );
  await pool.query("ANALYZE cm_alerts");
}, 120_000);
afterAll(async () => pool?.end());

/** The statement `read` sends, run under EXPLAIN ANALYZE: the rows its plan's leaves read (kept and filtered out). */
async function rowsRead(read: (db: Queryable) => Promise<unknown>): Promise<number> {
  const sent: Array<[string, unknown[]]> = [];
  const recording: Queryable = {
    query: (text, values) => {
      sent.push([text, values ?? []]);
      return pool.query(text, values);
    },
  };
  await read(recording);
  const [[text, values]] = sent;
  const { rows } = await pool.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
  type PlanNode = { "Node Type": string; "Actual Rows": number; "Actual Loops": number; "Rows Removed by Filter"?: number; Plans?: PlanNode[] };
  const leaves = (n: PlanNode): PlanNode[] => (n.Plans?.length ? n.Plans.flatMap(leaves) : [n]);
  return leaves(rows[0]["QUERY PLAN"][0].Plan).reduce((sum, n) => sum + (n["Actual Rows"] + (n["Rows Removed by Filter"] ?? 0)) * n["Actual Loops"], 0);
}
const alertsRead = (userId: string | null, limit: number) => rowsRead((db) => listAlerts(db, userId, limit));

describe("alert lists read what they answer", () => {
  it("a trader's alerts, newest first, read by user among 30,000 alerts of others", async () => {
    const me = randomUUID();
    for (const [i, rule] of (["LAYERING", "SPOOFING", "WASH_TRADE"] as const).entries())
      await pool.query(
        "INSERT INTO cm_alerts (alert_id, rule, user_id, symbol, severity, message, evidence, event_ts, raised_at) VALUES ($1, $2, $3, 'BTCUSDT', 'high', 'm', '[]', now(), now() - make_interval(secs => $4))",
        [`${rule}:${randomUUID()}`, rule, me, 3 - i],
      );
    const mine = await listAlerts(pool, me, 100);
    expect(mine.map((a) => a.rule)).toEqual(["WASH_TRADE", "SPOOFING", "LAYERING"]);
    expect(await alertsRead(me, 100)).toBeLessThanOrEqual(10);
    // A trader with no alert reads none (a scan read all 30,000 to find that out).
    expect(await alertsRead(randomUUID(), 100)).toBeLessThanOrEqual(10);
  });

  it("the admins' list of every user's alerts reads its page, not the table", async () => {
    const page = await listAlerts(pool, null, 50);
    expect(page).toHaveLength(50);
    expect(await alertsRead(null, 50)).toBeLessThanOrEqual(100);
  });
});

describe("the replay on start reads its window", () => {
  it("the last hour of an audit trail of 30,000 older events reads that hour", async () => {
    const run = randomUUID();
    const audit = (id: string, ago: string) =>
      pool.query(
        `INSERT INTO cm_audit (event_id, source, kind, user_id, symbol, payload, recorded_at)
         VALUES ($1, 'trading.orders', 'placed', 'u-1', 'BTCUSDT', $2, now() - $3::interval)`,
        [id, JSON.stringify({ source: "order", ev: { eventId: id } }), ago],
      );
    await pool.query(
      `INSERT INTO cm_audit (event_id, source, kind, user_id, symbol, payload, recorded_at)
       SELECT 'old-' || g || '-' || $1, 'trading.orders', 'placed', 'u-' || (g % 3000), 'BTCUSDT', '{}'::jsonb, now() - make_interval(hours => 2, secs => g)
         FROM generate_series(1, 30000) AS g`,
      [run],
    );
    await audit(`recent-1-${run}`, "10 minutes");
    await audit(`recent-2-${run}`, "1 minute");
    await pool.query("ANALYZE cm_audit");
    const replayed = await recentAudit(pool, 3_600_000);
    expect(replayed.map((a) => (a.source === "order" ? a.ev.eventId : ""))).toEqual([`recent-1-${run}`, `recent-2-${run}`]);
    expect(await rowsRead((db) => recentAudit(db, 3_600_000))).toBeLessThanOrEqual(10);
  });
});
