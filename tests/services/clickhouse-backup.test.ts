/**
 * The ClickHouse backup CronJob's script (components/data/backup.ts) and the restore its layout
 * implies, run as written with the real clickhouse-client against a ClickHouse 18.16 of this file's
 * own holding the project's migrated schema (its materialized views included, migration 0009):
 * rows are saved for tables only (a materialized view's rows are its TO table's), every view's
 * CREATE is saved apart, and the restore (tables, their rows, then the views) gives back every
 * table's rows, once, with the views feeding their tables again.
 * The scripts' `--host clickhouse --user trading` (the cluster's) reach the local server through a
 * `clickhouse-client` on PATH that swaps those for its address and credentials; `/backups` is a
 * temporary directory.
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupScript, clickhouseRestoreScript } from "../../components/data/backup";
import { DB_NAME, DB_USER } from "../../components/data/definitions";
import { startClickHouse, type ClickHouseServer } from "../harness/clickhouse";
import { createClickHouse, type ClickHouseKitClient } from "../../services/src/kit/datastores";
import { runClickHouseMigrations } from "../../services/src/migrations";

const exec = promisify(execFile);
let server: ClickHouseServer;
let ch: ClickHouseKitClient;
let admin: ClickHouseKitClient;
let work: string;

beforeAll(async () => {
  server = await startClickHouse();
  work = mkdtempSync(join(tmpdir(), "ch-backup-"));
  const bin = join(work, "bin");
  const wrapper = join(bin, "clickhouse-client");
  mkdirSync(bin);
  // The scripts call `clickhouse-client --host clickhouse --user trading --database ai_trading ...`.
  writeFileSync(
    wrapper,
    [
      "#!/bin/sh",
      `[ "$1 $2 $3 $4 $5 $6" = "--host clickhouse --user ${DB_USER} --database ${DB_NAME}" ] || { echo "unexpected arguments: $*" >&2; exit 2; }`,
      "shift 6",
      `exec /usr/bin/clickhouse-client --host 127.0.0.1 --port ${server.tcpPort} --user ${server.user} --password "$CLICKHOUSE_PASSWORD" --database ${DB_NAME} "$@"`,
    ].join("\n"),
  );
  chmodSync(wrapper, 0o755);
  admin = createClickHouse({ CLICKHOUSE_URL: server.url, CLICKHOUSE_USER: server.user, CLICKHOUSE_PASSWORD: server.password, CLICKHOUSE_DATABASE: "default" });
  await admin.command(`CREATE DATABASE ${DB_NAME}`);
  ch = createClickHouse({ CLICKHOUSE_URL: server.url, CLICKHOUSE_USER: server.user, CLICKHOUSE_PASSWORD: server.password, CLICKHOUSE_DATABASE: DB_NAME });
  await runClickHouseMigrations(ch);
}, 600_000);
afterAll(async () => {
  await ch?.close();
  await admin?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs a script as the CronJob does (`sh -c`). */
async function runScript(script: string): Promise<void> {
  const env = { ...process.env, PATH: `${join(work, "bin")}:${process.env.PATH}`, CLICKHOUSE_PASSWORD: server.password };
  await exec("sh", ["-c", script], { env, maxBuffer: 16 << 20 });
}
const counts = async () =>
  Object.fromEntries(
    await Promise.all(
      (await ch.query<{ name: string }>("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT IN ('View', 'MaterializedView') ORDER BY name")).map(
        async ({ name }) => [name, Number((await ch.query<{ n: string }>(`SELECT toString(count()) AS n FROM ${name}`))[0].n)] as const,
      ),
    ),
  );
const fill = (user: string, symbol: string) => ({ fill_id: `${user}:${symbol}`, order_id: `o-${user}-${symbol}`, user_id: user, symbol, side: "buy", quantity: 1, price: 1, fee: 0, ts_ms: 0, at: "2026-01-01 00:00:00" });

describe("ClickHouse backup", () => {
  it("saves rows of tables only and every view's CREATE apart; the restore gives back each table's rows once and working views", async () => {
    await ch.insert("pa_fills", [fill("u1", "AAA"), fill("u2", "AAA"), fill("u2", "BBB")]);
    await ch.insert("market_candles", [{ symbol: "AAA", timeframe: "1m", open_time: "2026-01-01 00:00:00", open: 1, high: 1, low: 1, close: 1, volume: 1, trades: 1, source: "test" }]);
    await ch.command("CREATE VIEW fills_per_user AS SELECT user_id, count() AS fills FROM pa_fills GROUP BY user_id");
    const before = await counts();
    expect(before).toMatchObject({ pa_fills: 3, pa_symbol_users: 3, pa_changed_users: 2, pa_changed_symbols: 1 });
    const views = (await ch.query<{ name: string }>("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine IN ('View', 'MaterializedView') ORDER BY name")).map((r) => r.name);
    expect(views).toEqual(expect.arrayContaining(["fills_per_user", "pa_changed_symbols_by_candles", "pa_changed_users_by_fills", "pa_changed_users_by_strategies", "pa_symbol_users_by_fills"]));

    // The job's volume, /backups, is a directory of this file's.
    await runScript(backupScript("clickhouse").replaceAll("/backups", join(work, "backups")));
    const [stamp] = readdirSync(join(work, "backups"));
    const dir = join(work, "backups", stamp);
    expect(readdirSync(join(dir, "views")).sort()).toEqual(views.map((v) => `${v}.sql`));
    const saved = readdirSync(join(dir, "tables"));
    expect(saved.filter((f) => f.endsWith(".native")).sort()).toEqual(Object.keys(before).map((t) => `${t}.native`).sort());
    expect(saved.filter((f) => f.endsWith(".sql")).sort()).toEqual(Object.keys(before).map((t) => `${t}.sql`).sort());

    // Disaster: the database is gone. The restore into an empty one of the same name.
    await admin.command(`DROP DATABASE ${DB_NAME}`);
    await admin.command(`CREATE DATABASE ${DB_NAME}`);
    await runScript(clickhouseRestoreScript(dir));
    expect(await counts()).toEqual(before);
    expect(await ch.query("SELECT user_id, toString(fills) AS fills FROM fills_per_user ORDER BY user_id")).toEqual([{ user_id: "u1", fills: "1" }, { user_id: "u2", fills: "2" }]);
    // The materialized views feed their tables again.
    await ch.insert("pa_fills", [fill("u3", "CCC")]);
    expect(await ch.query("SELECT user_id FROM pa_symbol_users WHERE symbol = 'CCC'")).toEqual([{ user_id: "u3" }]);
  }, 300_000);
});
