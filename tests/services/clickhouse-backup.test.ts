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
 * Its runs are recorded by its run recorder (the pod's second container, from the PostgreSQL image),
 * run here as written with this machine's psql against the harness's real PostgreSQL holding the
 * migrated schema, beside the backup, the directory they share a temporary one: the start, then a
 * success or the backup's failure code (EXIT_<n>, or the signal that stopped it: a run stopped
 * during an export stops its client at once and reports it), the recorder's own stop signal when the
 * backup reported nothing within its wait (SIGINT, the PostgreSQL images' STOPSIGNAL, or SIGTERM),
 * BACKUP_STOPPED_WITHOUT_OUTCOME within seconds of a backup killed outright (SIGKILL of its process
 * group: its heartbeat goes stale), never while a slow export keeps beating, never a code the backup
 * does not write; a stop during the table lookups is handled as one during an export; database-service
 * exports the row (catalog exportsJobRuns).
 */
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BACKUP_STOPPED_WITHOUT_OUTCOME,
  backupRunRecorderScript,
  backupScript,
  clickhouseRestoreScript,
  RECORDER_STOP_WAIT_SECONDS,
  RUN_OUTCOME_DIR,
  type BackupHeartbeat,
  type ClickHouseConnection,
  type PostgresConnection,
} from "../../components/data/backup";
import { DB_NAME } from "../../components/data/definitions";
import { backupJobName } from "../../components/topology";
import { runCommand } from "../../services/src/kit";
import { expectJobRunsExported, jobRunRow, queryOnce } from "../helpers/job-runs";
import { FAST_HEARTBEAT, killGroup, recorderTurns } from "../helpers/backup-processes";
import { PATIENCE_MS, within } from "../helpers/patience";
import databaseService from "../../services/src/services/database-service";
import { useServers } from "../harness/shared";
import { startClickHouse, type ClickHouseServer } from "../harness/clickhouse";
import { generatePassword } from "../harness/proc";
import { createClickHouse, type ClickHouseKitClient } from "../../services/src/kit/datastores";
import { runClickHouseMigrations } from "../../services/src/migrations";

const exec = promisify(execFile);
const srv = useServers("postgres");
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
    const backup = await runScript(backupScript("clickhouse", { clickhouse: local }).replaceAll("/backups", join(work, "backups")));
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

describe("ClickHouse backup's run recording", () => {
  const JOB = backupJobName("clickhouse");
  let pgConn: PostgresConnection;
  let pgPassword: string;

  beforeAll(async () => {
    expect(await runCommand(databaseService, "migrate", [], { env: { ...srv.env, LOG_LEVEL: "silent" }, defaultMetrics: false })).toBe(0);
    const u = new URL(srv.postgres.url);
    pgConn = { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), database: u.pathname.slice(1) };
    pgPassword = decodeURIComponent(u.password);
  }, 120_000);

  const query = <T>(sql: string, params: unknown[] = []) => queryOnce<T>(srv.postgres.url, sql, params);
  const row = () => jobRunRow(srv.postgres.url, JOB);
  const now = async () => (await query<{ now: Date }>("SELECT statement_timestamp() AS now"))[0].now;

  /** A fresh directory the two containers share (RUN_OUTCOME_DIR). */
  let runs = 0;
  const sharedDir = () => {
    const dir = join(work, `outcome-${++runs}`);
    mkdirSync(dir);
    return dir;
  };

  /** The recorder as the pod's second container runs it: `sh -c`, PATH and PGPASSWORD only. */
  function startRecorder(shared: string, heartbeat?: BackupHeartbeat): { pid: number; exited: Promise<{ code: number | null; output: string }>; kill: (signal: NodeJS.Signals) => void } {
    const child = spawn("sh", ["-c", backupRunRecorderScript(JOB, pgConn, heartbeat).replaceAll(RUN_OUTCOME_DIR, shared)], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PGPASSWORD: pgPassword },
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    return { pid: child.pid!, exited: new Promise((resolve) => child.on("close", (code) => resolve({ code, output }))), kill: (signal) => child.kill(signal) };
  }
  /** The backup container's script against this file's ClickHouse, its outcome left in `shared`. */
  const runBackup = (shared: string, target: ClickHouseConnection = local) =>
    runScript(backupScript("clickhouse", { clickhouse: target }).replaceAll("/backups", join(work, "backups")).replaceAll(RUN_OUTCOME_DIR, shared)).then(
      (r) => ({ ...r, code: 0 }),
      (e: { code: number; stdout: string; stderr: string }) => ({ leaks: [], configModes: [], output: e.stdout + e.stderr, code: e.code }),
    );
  /**
   * The backup container's script started in the background against ClickHouse on `port` (a proxy's),
   * in a process group of its own (as its container's processes are theirs), output ignored.
   */
  function spawnBackup(shared: string, port: number, heartbeat?: BackupHeartbeat) {
    const child = spawn("sh", ["-c", backupScript("clickhouse", { clickhouse: { ...local, port }, heartbeat }).replaceAll("/backups", join(work, "backups")).replaceAll(RUN_OUTCOME_DIR, shared)], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", TMPDIR: join(work, "tmp"), CLICKHOUSE_PASSWORD: server.password },
      stdio: "ignore",
      detached: true,
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    return { child, exited, killGroup: () => killGroup(child) };
  }

  async function startedSince(at: Date): Promise<void> {
    const until = Date.now() + 20_000;
    while (Date.now() < until) {
      const r = await row();
      if (r?.last_started_at && r.last_started_at.getTime() >= at.getTime()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no start of ${JOB} recorded since ${at.toISOString()}`);
  }

  it("records the start, then the success the backup reported after its pruning; the PostgreSQL password is in no output", async () => {
    const before = await now();
    const shared = sharedDir();
    const recorder = startRecorder(shared);
    const backup = await runBackup(shared);
    expect(backup.code, backup.output).toBe(0);
    expect(readFileSync(join(shared, "outcome"), "utf8")).toBe("SUCCESS\n");
    const { code, output } = await recorder.exited;
    expect(code, output).toBe(0);
    const r = (await row())!;
    expect(r.last_started_at!.getTime()).toBeGreaterThanOrEqual(before.getTime());
    expect(r.last_succeeded_at!.getTime()).toBeGreaterThanOrEqual(r.last_started_at!.getTime());
    expect(r.last_failed_at).toBeNull();
    for (const text of [output, backup.output]) {
      expect(text).not.toContain(pgPassword);
      expect(text).not.toContain(server.password);
    }
  }, 120_000);

  it("keeps the newest seven complete backups: a killed run's leftover is removed, other entries of the volume are neither counted nor removed", async () => {
    const backups = join(work, "backups");
    mkdirSync(backups, { recursive: true });
    const at = (days: number) => Date.now() / 1000 - days * 86_400;
    const old = Array.from({ length: 8 }, (_, i) => `202601${String(10 + i).padStart(2, "0")}T000000Z`);
    old.forEach((name, i) => {
      mkdirSync(join(backups, name, "tables"), { recursive: true });
      utimesSync(join(backups, name), at(20 - i), at(20 - i));
    });
    mkdirSync(join(backups, "20260120T000000Z.partial", "tables"), { recursive: true });
    mkdirSync(join(backups, "lost+found"), { recursive: true });
    utimesSync(join(backups, "lost+found"), at(30), at(30));
    const backup = await runBackup(sharedDir());
    expect(backup.code, backup.output).toBe(0);
    const left = readdirSync(backups).sort();
    expect(left.filter((n) => n.endsWith(".partial"))).toEqual([]);
    expect(left).toContain("lost+found");
    const complete = left.filter((n) => /^\d{8}T\d{6}Z$/.test(n));
    expect(complete).toHaveLength(7);
    // This run's backup (and any earlier test's, all newer than the planted ones) come first.
    expect(complete.filter((n) => !old.includes(n)).length).toBeGreaterThanOrEqual(1);
    expect(complete.filter((n) => old.includes(n))).toEqual(old.slice(old.length - (7 - complete.filter((n) => !old.includes(n)).length)));
  }, 120_000);

  it("records the backup's failure as EXIT_<n>, its exit status (a database the server does not have)", async () => {
    const previous = (await row())!;
    const shared = sharedDir();
    const recorder = startRecorder(shared);
    const backupsBefore = readdirSync(join(work, "backups")).sort();
    const backup = await runBackup(shared, { ...local, database: "no_such_database" });
    expect(backup.code, backup.output).toBeGreaterThan(0);
    // Nothing of the failed run is left for a restore or the pruning to take for a backup.
    expect(readdirSync(join(work, "backups")).sort()).toEqual(backupsBefore);
    expect(readFileSync(join(shared, "outcome"), "utf8")).toBe(`EXIT_${backup.code}\n`);
    const { code, output } = await recorder.exited;
    expect(code, output).toBe(0);
    const r = (await row())!;
    expect(r.last_failure_code).toBe(`EXIT_${backup.code}`);
    expect(r.last_started_at!.getTime()).toBeGreaterThan(previous.last_started_at!.getTime());
    expect(r.last_failed_at!.getTime()).toBeGreaterThanOrEqual(r.last_started_at!.getTime());
    expect(r.last_succeeded_at).toEqual(previous.last_succeeded_at);
  }, 120_000);

  it.each([
    ["SIGTERM", 143],
    // The PostgreSQL images' STOPSIGNAL, which containerd and CRI-O stop the recorder's container with.
    ["SIGINT", 130],
  ] as const)("a run whose backup reports nothing (killed outright) records the signal that stopped the recorder, %s, after its wait; it exits %i", async (signal, exitCode) => {
    const before = await now();
    const shared = sharedDir();
    const recorder = startRecorder(shared);
    await startedSince(before);
    const stoppedAt = Date.now();
    recorder.kill(signal);
    const { code, output } = await recorder.exited;
    expect(code, output).toBe(exitCode);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual((RECORDER_STOP_WAIT_SECONDS - 1) * 1000);
    const r = (await row())!;
    expect(r.last_failure_code).toBe(signal);
    expect(r.last_failed_at!.getTime()).toBeGreaterThanOrEqual(r.last_started_at!.getTime());
  }, 60_000);

  /**
   * A TCP proxy to this file's ClickHouse forwarding the first `forwarded` connections (one per client
   * run) and holding the later ones open unanswered (a client of those waits as on a hung export), or
   * with `later: "closed"` closing them at once (the client fails).
   */
  async function holdingProxy(forwarded: number, later: "held" | "closed" = "held"): Promise<{ port: number; held: () => number; heldClosed: Promise<void>; close: () => Promise<void> }> {
    let connections = 0;
    let held = 0;
    let closed: () => void = () => {};
    const heldClosed = new Promise<void>((resolve) => (closed = resolve));
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      sockets.add(client);
      if (++connections > forwarded) {
        held++;
        if (later === "closed") return void client.destroy();
        // Read and dropped, so that the client's end is seen.
        client.resume();
        client.on("close", () => closed());
        return;
      }
      const upstream = connect(server.tcpPort, "127.0.0.1");
      sockets.add(upstream);
      client.pipe(upstream).pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const port = (proxy.address() as AddressInfo).port;
    return { port, held: () => held, heldClosed, close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); proxy.close(() => resolve()); }) };
  }

  it.each([
    // The pod at its time limit under containerd: the ClickHouse image's STOPSIGNAL, the PostgreSQL image's.
    ["SIGTERM", "SIGINT", 143, 130],
    ["SIGINT", "SIGINT", 130, 130],
  ] as const)("a run stopped during an export (backup %s, recorder %s) stops the client, exits %i, and the recorder records the backup's signal", async (backupSignal, recorderSignal, backupExit, recorderExit) => {
    // system.tables twice, then the first table's CREATE is held.
    const proxy = await holdingProxy(2);
    try {
      const before = await now();
      const shared = sharedDir();
      const recorder = startRecorder(shared);
      const { child, exited: backupExited } = spawnBackup(shared, proxy.port);
      await startedSince(before);
      await expect.poll(() => proxy.held(), { timeout: 20_000 }).toBe(1);
      child.kill(backupSignal);
      recorder.kill(recorderSignal);
      expect(await backupExited).toBe(backupExit);
      // The held client was stopped with the script, not left waiting for its answer (which never comes: a bound only against a hang).
      await within(proxy.heldClosed, PATIENCE_MS, "the held client's end");
      expect(readFileSync(join(shared, "outcome"), "utf8")).toBe(`${backupSignal}\n`);
      const { code, output } = await recorder.exited;
      expect(code, output).toBe(recorderExit);
      const r = (await row())!;
      expect(r.last_failure_code).toBe(backupSignal);
      expect(r.last_failed_at!.getTime()).toBeGreaterThanOrEqual(r.last_started_at!.getTime());
      // The client's password file went with it.
      expect(readdirSync(join(work, "tmp"))).toEqual([]);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it.each([
    // The first lookup (the tables) held, stopped as at the time limit; the second (the views), by SIGINT.
    [0, "SIGTERM", 143],
    [1, "SIGINT", 130],
  ] as const)("a run stopped during its table lookup %i (%s) stops the client at once, exits %i, and the recorder records the signal's name", async (lookupsForwarded, signal, exitCode) => {
    const proxy = await holdingProxy(lookupsForwarded);
    const shared = sharedDir();
    const before = await now();
    const recorder = startRecorder(shared);
    const backup = spawnBackup(shared, proxy.port);
    try {
      await startedSince(before);
      await expect.poll(() => proxy.held(), { timeout: 20_000 }).toBe(1);
      backup.child.kill(signal);
      // The held lookup is never answered: waiting for it would never end (a bound only against a hang).
      expect(await within(backup.exited, PATIENCE_MS, "the backup's exit")).toBe(exitCode);
      await within(proxy.heldClosed, PATIENCE_MS, "the held lookup's end");
      expect(readFileSync(join(shared, "outcome"), "utf8")).toBe(`${signal}\n`);
      // The recorder, not stopped itself, records the backup's outcome and ends.
      const { code, output } = await within(recorder.exited, 20_000, "the recorder's exit");
      expect(code, output).toBe(0);
      const r = (await row())!;
      expect(r.last_failure_code).toBe(signal);
      expect(r.last_failed_at!.getTime()).toBeGreaterThanOrEqual(r.last_started_at!.getTime());
      expect(readdirSync(join(work, "tmp"))).toEqual([]);
    } finally {
      backup.killGroup();
      recorder.kill("SIGKILL");
      await proxy.close();
    }
  }, 60_000);

  it("a backup killed outright mid-export (SIGKILL of its process group) is recorded as BACKUP_STOPPED_WITHOUT_OUTCOME once its heartbeat is stale, within seconds", async () => {
    // system.tables twice, then the first table's CREATE is held: the backup is alive, and waiting.
    const proxy = await holdingProxy(2);
    const shared = sharedDir();
    const before = await now();
    const recorder = startRecorder(shared, FAST_HEARTBEAT);
    const backup = spawnBackup(shared, proxy.port, FAST_HEARTBEAT);
    try {
      await startedSince(before);
      await expect.poll(() => proxy.held(), { timeout: 20_000 }).toBe(1);
      const killedAt = Date.now();
      killGroup(backup.child);
      expect(await backup.exited).toBeNull();
      // Stale after FAST_HEARTBEAT.staleAfterSeconds of the recorder's one-second reads, from the last beat.
      const { code, output } = await within(recorder.exited, (FAST_HEARTBEAT.staleAfterSeconds + FAST_HEARTBEAT.intervalSeconds + 5) * 1000, "the recorder's verdict");
      const tookMs = Date.now() - killedAt;
      expect(code, output).toBe(0);
      expect(output).toContain("the backup container stopped without an outcome");
      expect(tookMs).toBeGreaterThanOrEqual((FAST_HEARTBEAT.staleAfterSeconds - FAST_HEARTBEAT.intervalSeconds) * 1000);
      expect(readdirSync(shared)).not.toContain("outcome");
      // It had been beating (a counter, renamed into place whole).
      expect(readFileSync(join(shared, "heartbeat"), "utf8")).toMatch(/^[1-9]\d*\n$/);
      const r = (await row())!;
      expect(r.last_failure_code).toBe(BACKUP_STOPPED_WITHOUT_OUTCOME);
      expect(r.last_started_at!.getTime()).toBeGreaterThanOrEqual(before.getTime());
      expect(r.last_failed_at!.getTime()).toBeGreaterThanOrEqual(r.last_started_at!.getTime());
      // Exported with its code, for ScheduledJobFailing.
      await expectJobRunsExported(srv.env, JOB, r, BACKUP_STOPPED_WITHOUT_OUTCOME);
    } finally {
      backup.killGroup();
      recorder.kill("SIGKILL");
      await proxy.close();
      // A SIGKILLed backup leaves its client's directory, which the next run removes (the test below):
      // removed here so that this test leaves nothing to the next.
      for (const d of readdirSync(join(work, "tmp"))) rmSync(join(work, "tmp", d), { recursive: true, force: true });
    }
  }, 60_000);

  it("a run killed outright (SIGKILL of its process group) leaves its client directory, password file in it, and the next run in the same scratch removes it first", async () => {
    // Where the backup has no run recorder its pod restarts a failed container in place
    // (restartPolicy OnFailure): the retry runs with the same /tmp emptyDir, TMPDIR here.
    const scratch = join(work, "tmp");
    // Someone else's directory in the scratch (a restore run by hand keeps mktemp's default name): not the backup's to remove.
    mkdirSync(join(scratch, "tmp.restore1234"));
    // The first lookup held: the client's config is written and the backup waits on the server.
    const proxy = await holdingProxy(0);
    const killed = spawnBackup(sharedDir(), proxy.port);
    try {
      await expect.poll(() => proxy.held(), { timeout: 20_000 }).toBe(1);
      killGroup(killed.child);
      expect(await within(killed.exited, PATIENCE_MS, "the killed backup's exit")).toBeNull();
      // No trap ran: the client's directory is left, its config holding the password.
      const left = readdirSync(scratch).filter((d) => d !== "tmp.restore1234");
      expect(left).toHaveLength(1);
      expect(readFileSync(join(scratch, left[0], "client.xml"), "utf8")).toContain("<password>");

      const next = await runBackup(sharedDir());
      expect(next.code, next.output).toBe(0);
      expect(readdirSync(scratch)).toEqual(["tmp.restore1234"]);
    } finally {
      killed.killGroup();
      await proxy.close();
      for (const d of readdirSync(scratch)) rmSync(join(scratch, d), { recursive: true, force: true });
    }
  }, 120_000); // a whole backup run (runBackup) is in it: the budget of the other tests that run one

  it("a backup container that never beat (its shell never ran) is recorded as BACKUP_STOPPED_WITHOUT_OUTCOME once the bound has passed since the recorder's start", async () => {
    const shared = sharedDir();
    const before = await now();
    const startedAt = Date.now();
    const recorder = startRecorder(shared, FAST_HEARTBEAT);
    try {
      const { code, output } = await within(recorder.exited, (FAST_HEARTBEAT.staleAfterSeconds + 5) * 1000, "the recorder's verdict");
      expect(code, output).toBe(0);
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(FAST_HEARTBEAT.staleAfterSeconds * 1000);
      const r = (await row())!;
      expect(r.last_failure_code).toBe(BACKUP_STOPPED_WITHOUT_OUTCOME);
      expect(r.last_failed_at!.getTime()).toBeGreaterThanOrEqual(before.getTime());
    } finally {
      recorder.kill("SIGKILL");
    }
  }, 60_000);

  it("a slow export, held for twice the heartbeat's bound, is never cut short: the recorder waits and records the backup's own outcome", async () => {
    const proxy = await holdingProxy(2);
    const shared = sharedDir();
    const before = await now();
    const recorder = startRecorder(shared, FAST_HEARTBEAT);
    let recorderEnded = false;
    void recorder.exited.then(() => (recorderEnded = true));
    const backup = spawnBackup(shared, proxy.port, FAST_HEARTBEAT);
    try {
      await startedSince(before);
      await expect.poll(() => proxy.held(), { timeout: 20_000 }).toBe(1);
      // Twice the bound in the recorder's own turns (a turn started is one checked before it), not in
      // the test's clock: a loaded machine's recorder may have made fewer checks in that many seconds.
      const turns = recorderTurns(recorder.pid);
      try {
        await expect.poll(() => turns.started() > 2 * FAST_HEARTBEAT.staleAfterSeconds || recorderEnded, { timeout: PATIENCE_MS, interval: 50 }).toBe(true);
      } finally {
        turns.stop();
      }
      expect(recorderEnded).toBe(false);
      const r = (await row())!;
      expect(r.last_started_at!.getTime()).toBeGreaterThanOrEqual(before.getTime());
      expect(r.last_failed_at === null || r.last_failed_at.getTime() < r.last_started_at!.getTime()).toBe(true);
      backup.child.kill("SIGTERM");
      expect(await within(backup.exited, PATIENCE_MS, "the backup's exit")).toBe(143);
      const { code, output } = await within(recorder.exited, 20_000, "the recorder's exit");
      expect(code, output).toBe(0);
      expect((await row())!.last_failure_code).toBe("SIGTERM");
    } finally {
      backup.killGroup();
      recorder.kill("SIGKILL");
      await proxy.close();
    }
  }, 60_000);

  it("an export that fails (its connection closed) ends the backup with the client's exit status, recorded as EXIT_<n>", async () => {
    const proxy = await holdingProxy(2, "closed");
    try {
      const before = await now();
      const shared = sharedDir();
      const recorder = startRecorder(shared);
      const backup = await runBackup(shared, { ...local, port: proxy.port });
      expect(proxy.held()).toBe(1);
      // The client exits with its error's code, which depends on when the connection closes under it:
      // 210 (NETWORK_ERROR) before its query is answered, 32 (ATTEMPT_TO_READ_AFTER_EOF) while it reads.
      const clientCode = Number(/Code: (\d+)\./.exec(backup.output)?.[1]);
      expect([32, 210], backup.output).toContain(clientCode);
      expect(backup.code, backup.output).toBe(clientCode);
      expect(readFileSync(join(shared, "outcome"), "utf8")).toBe(`EXIT_${clientCode}\n`);
      const { code, output } = await recorder.exited;
      expect(code, output).toBe(0);
      const r = (await row())!;
      expect(r.last_failure_code).toBe(`EXIT_${clientCode}`);
      expect(r.last_failed_at!.getTime()).toBeGreaterThanOrEqual(before.getTime());
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it("records what is not a code the backup writes as OUTCOME_UNREADABLE, never as SQL", async () => {
    for (const written of ["EXIT_1'); DELETE FROM scheduled_job_runs; --\n", "exit_1\n", "EXIT_1\nEXIT_2\n", "\n"]) {
      const shared = sharedDir();
      const before = await now();
      const recorder = startRecorder(shared);
      await startedSince(before);
      writeFileSync(join(shared, "outcome"), written);
      const { code, output } = await recorder.exited;
      expect(code, output).toBe(0);
      const r = (await row())!;
      expect(r.last_failure_code, written).toBe("OUTCOME_UNREADABLE");
      expect(r.last_failed_at!.getTime()).toBeGreaterThanOrEqual(before.getTime());
    }
  }, 120_000);

  it("database-service, which owns the schema, exports the backup's row on /metrics for its alerts", async () => {
    await expectJobRunsExported(srv.env, JOB, (await row())!, "OUTCOME_UNREADABLE");
  });
});
