/**
 * The PostgreSQL backup CronJob's script (components/data/backup.ts), run as written (`sh -c`, the
 * password in PGPASSWORD only) with this machine's pg_dump and psql against the harness's real
 * PostgreSQL holding the project's migrated schema: it records its run in scheduled_job_runs under
 * `postgres-backup` (start, then success after the dump and the pruning; a failure coded EXIT_<n>,
 * or by the signal that stopped it: SIGINT at its time limit, the PostgreSQL images' STOPSIGNAL, or SIGTERM) and the recording never changes its exit status, even
 * when the recording itself cannot be written. database-service exports the row on /metrics
 * (catalog exportsJobRuns).
 * `/backups` is a temporary directory.
 */
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupScript, type PostgresConnection } from "../../components/data/backup";
import { backupJobName } from "../../components/topology";
import { runCommand } from "../../services/src/kit";
import { expectJobRunsExported, jobRunRow, queryOnce } from "../helpers/job-runs";
import databaseService from "../../services/src/services/database-service";
import { useServers } from "../harness/shared";
import { pg } from "../harness";

const exec = promisify(execFile);
const srv = useServers("postgres");
const JOB = backupJobName("postgres");
let work: string;
let conn: PostgresConnection;
let password: string;

beforeAll(async () => {
  expect(await runCommand(databaseService, "migrate", [], { env: { ...srv.env, LOG_LEVEL: "silent" }, defaultMetrics: false })).toBe(0);
  const u = new URL(srv.postgres.url);
  conn = { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), database: u.pathname.slice(1) };
  password = decodeURIComponent(u.password);
  work = mkdtempSync(join(tmpdir(), "pg-backup-"));
}, 120_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const query = <T>(sql: string, params: unknown[] = []) => queryOnce<T>(srv.postgres.url, sql, params);
const row = () => jobRunRow(srv.postgres.url, JOB);

/** The script as the CronJob runs it, its volume a directory of this file's; PATH and PGPASSWORD only. */
function script(backups: string, target: PostgresConnection = conn): { text: string; env: Record<string, string> } {
  return { text: backupScript("postgres", undefined, target).replaceAll("/backups", backups), env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PGPASSWORD: password } };
}
async function run(backups: string, target?: PostgresConnection): Promise<{ code: number; output: string }> {
  const { text, env } = script(backups, target);
  try {
    const { stdout, stderr } = await exec("sh", ["-c", text], { env });
    return { code: 0, output: stdout + stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, output: err.stdout + err.stderr };
  }
}

describe("PostgreSQL backup", () => {
  it("records its start and, after the dump, its success; the dump lists the schema", async () => {
    const dir = join(work, "ok");
    mkdirSync(dir);
    const before = await query<{ now: Date }>("SELECT statement_timestamp() AS now");
    const { code, output } = await run(dir);
    expect(code, output).toBe(0);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^${conn.database}-\\d{8}T\\d{6}Z\\.dump$`));
    const { stdout } = await exec("pg_restore", ["--list", join(dir, files[0])]);
    expect(stdout).toContain("TABLE public scheduled_job_runs");
    const r = (await row())!;
    expect(r.last_started_at!.getTime()).toBeGreaterThanOrEqual(before[0].now.getTime());
    expect(r.last_succeeded_at!.getTime()).toBeGreaterThanOrEqual(r.last_started_at!.getTime());
    expect(r.last_failed_at).toBeNull();
    expect(output).not.toContain(password);
  });

  it("a dump that fails records EXIT_<n> and exits as pg_dump did, leaving no partial file", async () => {
    const previous = (await row())!;
    // pg_dump cannot write its file: its volume is missing.
    const { code, output } = await run(join(work, "missing"));
    expect(code, output).toBe(1);
    const r = (await row())!;
    expect(r.last_failure_code).toBe("EXIT_1");
    expect(r.last_failed_at!.getTime()).toBeGreaterThanOrEqual(r.last_started_at!.getTime());
    expect(r.last_started_at!.getTime()).toBeGreaterThan(previous.last_started_at!.getTime());
    expect(r.last_succeeded_at).toEqual(previous.last_succeeded_at);
  });

  it("a run whose recording cannot be written (a wrong database) keeps pg_dump's exit status", async () => {
    const previous = (await row())!;
    const dir = join(work, "wrong-db");
    mkdirSync(dir);
    const { code, output } = await run(dir, { ...conn, database: "no_such_database" });
    expect(code, output).toBe(1);
    expect(output).toContain('database "no_such_database" does not exist');
    expect(output).toContain("could not record the run of postgres-backup in scheduled_job_runs (start)");
    expect(output).toContain("could not record the run of postgres-backup in scheduled_job_runs (failure)");
    expect(readdirSync(dir)).toEqual([]);
    expect(await row()).toEqual(previous);
  });

  it.each([
    // At its time limit: the PostgreSQL images' STOPSIGNAL, which containerd and CRI-O send.
    ["SIGINT", 130],
    // A runtime or a person sending the default.
    ["SIGTERM", 143],
  ] as const)("a run stopped by %s records that signal's name, stops pg_dump and exits %i", async (signal, exitCode) => {
    const dir = join(work, `stopped-${signal}`);
    mkdirSync(dir);
    // pg_dump waits for its lock on a table another session holds exclusively.
    await query("CREATE TABLE IF NOT EXISTS backup_test_locked (id int)");
    const blocker = new pg.Client({ connectionString: srv.postgres.url });
    await blocker.connect();
    try {
      await blocker.query("BEGIN");
      await blocker.query("LOCK TABLE backup_test_locked IN ACCESS EXCLUSIVE MODE");
      const { text, env } = script(dir);
      const child = spawn("sh", ["-c", text], { env, stdio: "ignore" });
      const exited = new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
      const waiting = async () => (await query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'"))[0].n;
      const deadline = Date.now() + 20_000;
      while ((await waiting()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await waiting()).toBe(1);
      child.kill(signal);
      await blocker.query("ROLLBACK");
      expect(await exited).toBe(exitCode);
    } finally {
      await blocker.end();
    }
    expect((await row())!.last_failure_code).toBe(signal);
    expect(readdirSync(dir)).toEqual([]);
    // pg_dump was stopped with the script, not left waiting for the lock.
    const dumping = async () => (await query("SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_dump'")).length;
    const until = Date.now() + 5_000;
    while ((await dumping()) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(await dumping()).toBe(0);
  });

  it("database-service, which owns the schema, exports the backup's row on /metrics for its alerts", async () => {
    await expectJobRunsExported(srv.env, JOB, (await row())!, "SIGTERM");
  });
});
