/**
 * Migration 0400 against the harness's PostgreSQL, through the project's migration runner: every text
 * user_id column (and the backtests' owner_id) refuses a UUID spelled in upper case (kit canonicalUserId's rule: an id that is no
 * UUID passes). On a database that already holds such rows it lower-cases them first; a row whose
 * canonical twin exists on a unique key, and the append-only compliance trail, are left as they are
 * and keep that table's constraint NOT VALID, with a warning naming it.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pg } from "../harness";
import { useServers } from "../harness/shared";
import { loadMigrationFiles, POSTGRES_MIGRATIONS_DIR, runPostgresMigrations } from "../../services/src/migrations";

const srv = useServers("postgres");
const pools: import("pg").Pool[] = [];
const all = loadMigrationFiles(POSTGRES_MIGRATIONS_DIR);

/** A new empty database and a pool on it; its server notices (RAISE WARNING) are collected. */
async function freshDb(): Promise<{ pool: import("pg").Pool; notices: string[] }> {
  const admin = new pg.Client({ connectionString: srv.postgres.adminUrl });
  await admin.connect();
  const name = `uid_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(srv.postgres.adminUrl);
  u.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: u.toString(), max: 3 });
  const notices: string[] = [];
  pool.on("connect", (c) => c.on("notice", (n) => notices.push(n.message ?? "")));
  pools.push(pool);
  return { pool, notices };
}

/**
 * Per text user_id column (keyed by its table) and backtest owner_id column (keyed `<table>.owner_id`):
 * whether its 0400 constraint exists and is validated.
 */
async function userIdConstraints(pool: import("pg").Pool): Promise<Map<string, boolean | undefined>> {
  const { rows } = await pool.query<{ table_name: string; column_name: string; validated: boolean | null }>(
    `SELECT c.table_name, c.column_name, k.convalidated AS validated
       FROM information_schema.columns c
       LEFT JOIN pg_constraint k ON k.conrelid = format('%I', c.table_name)::regclass AND k.conname = c.table_name || '_' || c.column_name || '_canonical'
      WHERE c.table_schema = 'public' AND c.data_type IN ('text', 'character varying')
        AND (c.column_name = 'user_id' OR (c.column_name = 'owner_id' AND c.table_name LIKE 'bt\_%'))`,
  );
  return new Map(rows.map((r) => [r.column_name === "user_id" ? r.table_name : `${r.table_name}.${r.column_name}`, r.validated ?? undefined]));
}

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
});

describe("migration 0400: user ids canonical in PostgreSQL", () => {
  const user = randomUUID();
  const USER = user.toUpperCase();
  const twin = randomUUID();
  let db: { pool: import("pg").Pool; notices: string[] };

  beforeAll(async () => {
    db = await freshDb();
    await runPostgresMigrations(db.pool, { files: all.filter((f) => f.version < 400) });
    const q = (sql: string, params: unknown[]) => db.pool.query(sql, params);
    // Written before 0400 in upper case: a preference (no twin), a fill (no twin; its pm_daily_pnl
    // row follows from the fill trigger), positions of which one has a canonical twin, an alert.
    await q("INSERT INTO nt_preferences (user_id, email) VALUES ($1, 'a@example.com')", [USER]);
    await q(
      `INSERT INTO pm_fills (fill_id, order_id, user_id, symbol, side, quantity, price, fee, realized_pnl, cash_delta, fill_ts)
       VALUES ($1, 'o1', $2, 'BTCUSDT', 'buy', 1, 100, 0, 0, -100, now()), ('f-marker', 'o2', 'Marker-1', 'BTCUSDT', 'buy', 1, 100, 0, 0, -100, now())`,
      [randomUUID(), USER],
    );
    await q("INSERT INTO om_positions (user_id, symbol, quantity) VALUES ($1, 'BTCUSDT', 1), ($1, 'ETHUSDT', 2), ($2, 'BTCUSDT', 5), ($3, 'BTCUSDT', 7)", [
      twin.toUpperCase(),
      twin,
      user,
    ]);
    await q("INSERT INTO bt_owner_turns (owner_id, last_claimed_at) VALUES ($1, now())", [USER]);
    await q("INSERT INTO cm_alerts (alert_id, rule, user_id, symbol, severity, message, evidence, event_ts) VALUES ($1, 'r', $2, 'BTCUSDT', 'low', 'm', '[]', now())", [
      randomUUID(),
      USER,
    ]);
    const result = await runPostgresMigrations(db.pool);
    expect(result.applied[0]).toBe("0400_user_id_canonical.sql");
  }, 120_000);

  it("lower-cases the rows written before, and keeps an id that is no UUID as it is", async () => {
    expect((await db.pool.query("SELECT user_id FROM nt_preferences")).rows).toEqual([{ user_id: user }]);
    expect((await db.pool.query("SELECT user_id FROM pm_fills ORDER BY fill_id = 'f-marker'")).rows).toEqual([{ user_id: user }, { user_id: "Marker-1" }]);
    expect((await db.pool.query("SELECT DISTINCT user_id FROM pm_daily_pnl ORDER BY 1")).rows.map((r) => r.user_id).sort()).toEqual(["Marker-1", user].sort());
    // A backtest's owner is a user id too.
    expect((await db.pool.query("SELECT owner_id FROM bt_owner_turns")).rows).toEqual([{ owner_id: user }]);
  });

  it("leaves a row whose canonical twin exists, and the append-only alerts, with the table's constraint NOT VALID and a warning", async () => {
    const positions = (await db.pool.query(`SELECT user_id, symbol, quantity::text AS quantity FROM om_positions ORDER BY user_id COLLATE "C", symbol`)).rows;
    expect(positions).toEqual(
      [
        { user_id: twin.toUpperCase(), symbol: "BTCUSDT", quantity: "1" },
        { user_id: twin, symbol: "BTCUSDT", quantity: "5" },
        { user_id: twin, symbol: "ETHUSDT", quantity: "2" },
        { user_id: user, symbol: "BTCUSDT", quantity: "7" },
      ].sort((a, b) => (a.user_id + a.symbol < b.user_id + b.symbol ? -1 : 1)),
    );
    expect((await db.pool.query("SELECT user_id FROM cm_alerts")).rows).toEqual([{ user_id: USER }]);
    const constraints = await userIdConstraints(db.pool);
    expect(constraints.get("om_positions")).toBe(false);
    expect(constraints.get("cm_alerts")).toBe(false);
    expect(constraints.get("nt_preferences")).toBe(true);
    expect(constraints.get("pm_fills")).toBe(true);
    expect(db.notices.filter((n) => n.includes("_user_id_canonical")).sort()).toEqual([
      "cm_alerts: 1 row(s) keep a user id in upper case (append-only); constraint cm_alerts_user_id_canonical left NOT VALID",
      "om_positions: 1 row(s) keep a user id in upper case (their canonical twin exists); constraint om_positions_user_id_canonical left NOT VALID",
    ]);
  });

  it("refuses a new row with a UUID in upper case, even where the constraint is NOT VALID", async () => {
    for (const [sql, params] of [
      ["INSERT INTO nt_preferences (user_id) VALUES ($1)", [randomUUID().toUpperCase()]],
      ["INSERT INTO om_positions (user_id, symbol, quantity) VALUES ($1, 'BTCUSDT', 1)", [randomUUID().toUpperCase()]],
      ["INSERT INTO bt_owner_turns (owner_id, last_claimed_at) VALUES ($1, now())", [randomUUID().toUpperCase()]],
    ] as const) {
      await expect(db.pool.query(sql, [...params])).rejects.toMatchObject({ code: "23514" });
    }
    await db.pool.query("INSERT INTO nt_preferences (user_id) VALUES ($1), ('Not-A-Uuid')", [randomUUID()]);
  });

  it("on a database with canonical rows only, every text user_id column gets a validated constraint", async () => {
    const empty = await freshDb();
    await runPostgresMigrations(empty.pool);
    const constraints = await userIdConstraints(empty.pool);
    expect(constraints.size).toBeGreaterThanOrEqual(25);
    for (const owned of ["bt_runs.owner_id", "bt_jobs.owner_id", "bt_owner_turns.owner_id"]) expect(constraints.has(owned), owned).toBe(true);
    for (const [table, validated] of constraints) expect(validated, table).toBe(true);
    expect(empty.notices.filter((n) => n.includes("_user_id_canonical"))).toEqual([]);
  }, 120_000);
});
