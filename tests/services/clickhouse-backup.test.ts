/**
 * The ClickHouse backup CronJob's script (components/data/backup.ts) and the restore its layout
 * implies, run as written with the real clickhouse-client against a ClickHouse 18.16 of this file's
 * own holding the project's migrated schema (its materialized views included, migration 0009):
 * rows are saved for tables only (a materialized view's rows are its TO table's), every view's
 * CREATE is saved apart, and the restore (tables, their rows, then the views) gives back every
 * table's rows, once, with the views feeding their tables again.
 * The scripts run with the real client (/usr/bin/clickhouse-client, 18.16 like the offline stand-in
 * image) pointed at the local server, and the password in nothing but CLICKHOUSE_PASSWORD, which the
 * 18.16 client does not read itself: a password with characters XML and the shell treat specially
 * must reach the server, and never appear in the scripts' output nor on any process's command line
 * while they run. `/backups` is a temporary directory.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupScript, clickhouseRestoreScript, type ClickHouseConnection } from "../../components/data/backup";
import { DB_NAME } from "../../components/data/definitions";
import { startClickHouse, type ClickHouseServer } from "../harness/clickhouse";
import { generatePassword } from "../harness/proc";
import { createClickHouse, type ClickHouseKitClient } from "../../services/src/kit/datastores";
import { runClickHouseMigrations } from "../../services/src/migrations";

const exec = promisify(execFile);
let server: ClickHouseServer;
let ch: ClickHouseKitClient;
let admin: ClickHouseKitClient;
let work: string;
let local: ClickHouseConnection;

beforeAll(async () => {
  server = await startClickHouse({ password: `p&<q>"r'$s \\t;${generatePassword(6)}` });
  work = mkdtempSync(join(tmpdir(), "ch-backup-"));
  local = { host: "127.0.0.1", port: server.tcpPort, user: server.user, database: DB_NAME };
  mkdirSync(join(work, "tmp"));
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

/** Command lines of this machine's processes, as anyone on it reads them (/proc/<pid>/cmdline). */
function commandLines(): string[] {
  const lines: string[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      lines.push(readFileSync(`/proc/${pid}/cmdline`, "latin1").replaceAll("\0", " "));
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return lines;
}

/** What is seen while a script runs: command lines holding the password, the client config files. */
interface Watch {
  leaks: string[];
  configModes: string[];
}

/**
 * Runs a script as the CronJob does (`sh -c`) with PATH, TMPDIR and CLICKHOUSE_PASSWORD only, while
 * reading every process's command line and the mode of each client config file under TMPDIR.
 */
async function runScript(script: string): Promise<Watch & { output: string }> {
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", TMPDIR: join(work, "tmp"), CLICKHOUSE_PASSWORD: server.password };
  const watch: Watch = { leaks: [], configModes: [] };
  let running = true;
  const watching = (async () => {
    while (running) {
      for (const line of commandLines()) if (line.includes(server.password) && !watch.leaks.includes(line)) watch.leaks.push(line);
      for (const d of readdirSync(env.TMPDIR)) {
        try {
          const dirMode = (statSync(join(env.TMPDIR, d)).mode & 0o777).toString(8);
          const fileMode = (statSync(join(env.TMPDIR, d, "client.xml")).mode & 0o777).toString(8);
          watch.configModes.push(`${dirMode} ${fileMode}`);
        } catch {
          // Not written yet, or already removed.
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    const { stdout, stderr } = await exec("sh", ["-c", script], { env, maxBuffer: 16 << 20 });
    return { ...watch, output: stdout + stderr };
  } finally {
    running = false;
    await watching;
  }
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
  it("needs the password given to the client some other way: the 18.16 client does not read CLICKHOUSE_PASSWORD", async () => {
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", CLICKHOUSE_PASSWORD: server.password };
    const args = ["--host", "127.0.0.1", "--port", String(server.tcpPort), "--user", server.user, "--query", "SELECT 1"];
    await expect(exec("clickhouse-client", args, { env })).rejects.toMatchObject({ stderr: expect.stringContaining("Password required for user default") });
  });

  it("saves rows of tables only and every view's CREATE apart; the restore gives back each table's rows once and working views", async () => {
    await ch.insert("pa_fills", [fill("u1", "AAA"), fill("u2", "AAA"), fill("u2", "BBB")]);
    await ch.insert("market_candles", [{ symbol: "AAA", timeframe: "1m", open_time: "2026-01-01 00:00:00", open: 1, high: 1, low: 1, close: 1, volume: 1, trades: 1, source: "test" }]);
    await ch.command("CREATE VIEW fills_per_user AS SELECT user_id, count() AS fills FROM pa_fills GROUP BY user_id");
    const before = await counts();
    expect(before).toMatchObject({ pa_fills: 3, pa_symbol_users: 3, pa_changed_users: 2, pa_changed_symbols: 1 });
    const views = (await ch.query<{ name: string }>("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine IN ('View', 'MaterializedView') ORDER BY name")).map((r) => r.name);
    expect(views).toEqual(expect.arrayContaining(["fills_per_user", "pa_changed_symbols_by_candles", "pa_changed_users_by_fills", "pa_changed_users_by_strategies", "pa_symbol_users_by_fills"]));

    // The job's volume, /backups, is a directory of this file's.
    const backup = await runScript(backupScript("clickhouse", local).replaceAll("/backups", join(work, "backups")));
    expect(backup.leaks).toEqual([]);
    expect(backup.output).not.toContain(server.password);
    // The password's file is the script's own while it runs, and gone with it.
    expect(backup.configModes.length).toBeGreaterThan(0);
    expect(new Set(backup.configModes)).toEqual(new Set(["700 600"]));
    expect(readdirSync(join(work, "tmp"))).toEqual([]);
    const [stamp] = readdirSync(join(work, "backups"));
    const dir = join(work, "backups", stamp);
    expect(readdirSync(join(dir, "views")).sort()).toEqual(views.map((v) => `${v}.sql`));
    const saved = readdirSync(join(dir, "tables"));
    expect(saved.filter((f) => f.endsWith(".native")).sort()).toEqual(Object.keys(before).map((t) => `${t}.native`).sort());
    expect(saved.filter((f) => f.endsWith(".sql")).sort()).toEqual(Object.keys(before).map((t) => `${t}.sql`).sort());

    // Disaster: the database is gone. The restore into an empty one of the same name.
    await admin.command(`DROP DATABASE ${DB_NAME}`);
    await admin.command(`CREATE DATABASE ${DB_NAME}`);
    const restore = await runScript(clickhouseRestoreScript(dir, local));
    expect(restore.leaks).toEqual([]);
    expect(restore.output).not.toContain(server.password);
    expect(readdirSync(join(work, "tmp"))).toEqual([]);
    expect(await counts()).toEqual(before);
    expect(await ch.query("SELECT user_id, toString(fills) AS fills FROM fills_per_user ORDER BY user_id")).toEqual([{ user_id: "u1", fills: "1" }, { user_id: "u2", fills: "2" }]);
    // The materialized views feed their tables again.
    await ch.insert("pa_fills", [fill("u3", "CCC")]);
    expect(await ch.query("SELECT user_id FROM pa_symbol_users WHERE symbol = 'CCC'")).toEqual([{ user_id: "u3" }]);
  }, 300_000);
});
