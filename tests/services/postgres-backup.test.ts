/**
 * The PostgreSQL backup CronJob's script (components/data/backup.ts), run as written (`sh -c`, the
 * password in PGPASSWORD only) with this machine's pg_dump and psql against the harness's real
 * PostgreSQL holding the project's migrated schema: it records its run in scheduled_job_runs under
 * `postgres-backup` (start, then success after the dump and the pruning; a failure coded EXIT_<n>,
 * or by the signal that stopped it: SIGINT at its time limit, the PostgreSQL images' STOPSIGNAL, or SIGTERM) and the recording never changes its exit status, even
 * when the recording itself cannot be written. database-service exports the row on /metrics
 * (catalog exportsJobRuns).
 * Where the runtime runs job companions (Kubernetes) the run is recorded by a run recorder beside the
 * backup instead (the ClickHouse backup's, backupRunRecorderScript), the backup writing only its
 * outcome and heartbeat: a normal run is recorded once (one start, one success, seen by a trigger on
 * the table), one stopped at its time limit once by its signal, a backup killed outright mid-dump
 * (SIGKILL of its process group) as BACKUP_STOPPED_WITHOUT_OUTCOME within seconds, and a slow dump
 * is never cut short.
 * `/backups` is a temporary directory.
 */
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKUP_STOPPED_WITHOUT_OUTCOME, backupRunRecorderScript, backupScript, RUN_OUTCOME_DIR, type PostgresConnection } from "../../components/data/backup";
import { backupJobName } from "../../components/topology";
import { runCommand } from "../../services/src/kit";
import { expectJobRunsExported, jobRunRow, queryOnce } from "../helpers/job-runs";
import { FAST_HEARTBEAT, groupGone, killGroup, recorderTurns } from "../helpers/backup-processes";
import { PATIENCE_MS, within } from "../helpers/patience";
import databaseService from "../../services/src/services/database-service";
import { useServers } from "../harness/shared";
import { pg, waitFor } from "../harness";

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
  return { text: backupScript("postgres", { postgres: target }).replaceAll("/backups", backups), env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PGPASSWORD: password } };
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

  it("keeps the newest seven complete dumps: a killed run's leftover is removed, other entries of the volume are neither counted nor removed", async () => {
    const dir = join(work, "pruned");
    mkdirSync(dir);
    const day = 86_400;
    const at = (days: number) => Date.now() / 1000 - days * day;
    // Eight older dumps, a day apart (the oldest 20 days back).
    const old = Array.from({ length: 8 }, (_, i) => `${conn.database}-202601${String(10 + i).padStart(2, "0")}T000000Z.dump`);
    old.forEach((name, i) => {
      writeFileSync(join(dir, name), "old dump");
      utimesSync(join(dir, name), at(20 - i), at(20 - i));
    });
    // A run SIGKILLed mid-dump (no trap ran) and ext4's lost+found, older than every dump.
    writeFileSync(join(dir, `${conn.database}-20260120T000000Z.dump.partial`), "half");
    mkdirSync(join(dir, "lost+found"));
    utimesSync(join(dir, "lost+found"), at(30), at(30));
    const { code, output } = await run(dir);
    expect(code, output).toBe(0);
    const left = readdirSync(dir).sort();
    expect(left.filter((n) => n.endsWith(".partial"))).toEqual([]);
    expect(left).toContain("lost+found");
    const dumps = left.filter((n) => n.endsWith(".dump"));
    expect(dumps).toHaveLength(7);
    // This run's dump and the six newest older ones.
    expect(dumps.filter((n) => old.includes(n))).toEqual(old.slice(2));
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
    await expect.poll(dumping, { timeout: PATIENCE_MS, interval: 100 }).toBe(0);
  });

  it("database-service, which owns the schema, exports the backup's row on /metrics for its alerts", async () => {
    await expectJobRunsExported(srv.env, JOB, (await row())!, "SIGTERM");
  });
});

describe("PostgreSQL backup recorded by its run recorder (job companions)", () => {

  beforeAll(async () => {
    // Every write of the backup's row, as what it recorded, so that "once" can be counted.
    await query("CREATE TABLE backup_run_writes (n serial PRIMARY KEY, kind text NOT NULL)");
    await query(`CREATE FUNCTION backup_run_written() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.job <> '${JOB}' THEN RETURN NEW; END IF;
        IF TG_OP = 'INSERT' OR NEW.last_started_at IS DISTINCT FROM OLD.last_started_at THEN
          INSERT INTO backup_run_writes (kind) VALUES ('start');
        ELSIF NEW.last_succeeded_at IS DISTINCT FROM OLD.last_succeeded_at THEN
          INSERT INTO backup_run_writes (kind) VALUES ('success');
        ELSE
          INSERT INTO backup_run_writes (kind) VALUES ('failure ' || NEW.last_failure_code);
        END IF;
        RETURN NEW;
      END $$`);
    await query("CREATE TRIGGER backup_run_written AFTER INSERT OR UPDATE ON scheduled_job_runs FOR EACH ROW EXECUTE FUNCTION backup_run_written()");
    await query("CREATE TABLE IF NOT EXISTS backup_test_locked (id int)");
  });

  /** The writes since the last call, in order. */
  const takeWrites = async () => {
    const rows = await query<{ n: number; kind: string }>("DELETE FROM backup_run_writes RETURNING n, kind");
    return rows.sort((a, b) => a.n - b.n).map((w) => w.kind);
  };

  let runs = 0;
  /** A fresh directory the two containers share (RUN_OUTCOME_DIR), and the backups' volume. */
  function dirs(): { shared: string; backups: string } {
    const base = join(work, `recorded-${++runs}`);
    mkdirSync(join(base, "shared"), { recursive: true });
    mkdirSync(join(base, "backups"));
    return { shared: join(base, "shared"), backups: join(base, "backups") };
  }
  const env = () => ({ PATH: process.env.PATH ?? "/usr/bin:/bin", PGPASSWORD: password });

  /** The recorder as the pod's second container runs it: `sh -c`, PATH and PGPASSWORD only. */
  function startRecorder(shared: string) {
    const child = spawn("sh", ["-c", backupRunRecorderScript(JOB, conn, FAST_HEARTBEAT).replaceAll(RUN_OUTCOME_DIR, shared)], { env: env() });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    let ended = false;
    const exited = new Promise<{ code: number | null; output: string }>((resolve) => child.on("close", (code) => { ended = true; resolve({ code, output }); }));
    return { pid: child.pid!, exited, ended: () => ended, kill: (signal: NodeJS.Signals) => child.kill(signal) };
  }
  /** The backup container's script (reporting to its recorder), in a process group of its own as in its container. */
  function startBackup(d: { shared: string; backups: string }) {
    const text = backupScript("postgres", { postgres: conn, heartbeat: FAST_HEARTBEAT, postgresRecording: "run-recorder" }).replaceAll("/backups", d.backups).replaceAll(RUN_OUTCOME_DIR, d.shared);
    const child = spawn("sh", ["-c", text], { env: env(), detached: true });
    let output = "";
    child.stdout.on("data", (x) => (output += x));
    child.stderr.on("data", (x) => (output += x));
    const exited = new Promise<{ code: number | null; output: string }>((resolve) => child.on("close", (code) => resolve({ code, output })));
    return { child, exited, killGroup: () => killGroup(child) };
  }
  /** A session holding backup_test_locked exclusively, so that pg_dump waits mid-dump; and pg_dump seen waiting. */
  async function lockTable() {
    const blocker = new pg.Client({ connectionString: srv.postgres.url });
    await blocker.connect();
    await blocker.query("BEGIN");
    await blocker.query("LOCK TABLE backup_test_locked IN ACCESS EXCLUSIVE MODE");
    return blocker;
  }
  const dumpWaiting = async () => (await query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'"))[0].n;

  /**
   * A run (its recorder and its backup) whose pg_dump waits on a locked table, handed to `body` once
   * it waits there; afterwards both processes are killed and the lock let go, whatever `body` did.
   */
  async function withHeldDump(body: (run: { d: ReturnType<typeof dirs>; blocker: Awaited<ReturnType<typeof lockTable>>; recorder: ReturnType<typeof startRecorder>; backup: ReturnType<typeof startBackup> }) => Promise<void>) {
    await takeWrites();
    const d = dirs();
    const blocker = await lockTable();
    const recorder = startRecorder(d.shared);
    const backup = startBackup(d);
    try {
      await expect.poll(dumpWaiting, { timeout: 20_000 }).toBe(1);
      await body({ d, blocker, recorder, backup });
    } finally {
      backup.killGroup();
      recorder.kill("SIGKILL");
      await blocker.query("ROLLBACK");
      await blocker.end();
    }
  }

  it("a normal run is recorded once: one start, one success, no password in any output", async () => {
    await takeWrites();
    const d = dirs();
    const recorder = startRecorder(d.shared);
    const backup = startBackup(d);
    const done = await within(backup.exited, 30_000, "the backup's exit");
    expect(done.code, done.output).toBe(0);
    expect(readFileSync(join(d.shared, "outcome"), "utf8")).toBe("SUCCESS\n");
    expect(readdirSync(d.backups)).toEqual([expect.stringMatching(new RegExp(`^${conn.database}-\\d{8}T\\d{6}Z\\.dump$`))]);
    const rec = await within(recorder.exited, 10_000, "the recorder's exit");
    expect(rec.code, rec.output).toBe(0);
    // Nothing else is written: the recorder, the only writer, has ended (its output closed), and every
    // process of the backup's group is gone, its heartbeat loop included.
    await waitFor("the backup's process group to be empty", async () => groupGone(backup.child), { timeoutMs: PATIENCE_MS, intervalMs: 50 });
    expect(await takeWrites()).toEqual(["start", "success"]);
    const r = (await row())!;
    expect(r.last_succeeded_at!.getTime()).toBeGreaterThanOrEqual(r.last_started_at!.getTime());
    expect(r.last_failed_at === null || r.last_failed_at.getTime() < r.last_started_at!.getTime()).toBe(true);
    for (const text of [rec.output, done.output]) expect(text).not.toContain(password);
  }, 60_000);

  it("a backup killed outright mid-dump (SIGKILL of its process group) is recorded once as BACKUP_STOPPED_WITHOUT_OUTCOME, within seconds", async () => {
    await withHeldDump(async ({ d, recorder, backup }) => {
      const killedAt = Date.now();
      killGroup(backup.child);
      expect((await backup.exited).code).toBeNull();
      const rec = await within(recorder.exited, (FAST_HEARTBEAT.staleAfterSeconds + FAST_HEARTBEAT.intervalSeconds + 5) * 1000, "the recorder's verdict");
      const tookMs = Date.now() - killedAt;
      expect(rec.code, rec.output).toBe(0);
      expect(rec.output).toContain("the backup container stopped without an outcome");
      expect(tookMs).toBeGreaterThanOrEqual((FAST_HEARTBEAT.staleAfterSeconds - FAST_HEARTBEAT.intervalSeconds) * 1000);
      expect(readdirSync(d.shared)).not.toContain("outcome");
      expect(await takeWrites()).toEqual(["start", `failure ${BACKUP_STOPPED_WITHOUT_OUTCOME}`]);
      const r = (await row())!;
      expect(r.last_failure_code).toBe(BACKUP_STOPPED_WITHOUT_OUTCOME);
      expect(r.last_failed_at!.getTime()).toBeGreaterThanOrEqual(r.last_started_at!.getTime());
      // Exported with its code, for ScheduledJobFailing.
      await expectJobRunsExported(srv.env, JOB, r, BACKUP_STOPPED_WITHOUT_OUTCOME);
    });
  }, 60_000);

  it("a slow dump, held for twice the heartbeat's bound, is never cut short: its success is recorded once", async () => {
    await withHeldDump(async ({ d, blocker, recorder, backup }) => {
      // Twice the bound in the recorder's own turns (a turn started is one checked before it), not in
      // the test's clock: a loaded machine's recorder may have made fewer checks in that many seconds.
      const turns = recorderTurns(recorder.pid);
      try {
        await waitFor("twice the heartbeat's bound in recorder turns", async () => turns.started() > 2 * FAST_HEARTBEAT.staleAfterSeconds || recorder.ended(), { timeoutMs: PATIENCE_MS, intervalMs: 50 });
      } finally {
        turns.stop();
      }
      expect(recorder.ended()).toBe(false);
      expect(await dumpWaiting()).toBe(1);
      await blocker.query("ROLLBACK");
      const done = await within(backup.exited, 20_000, "the backup's exit");
      expect(done.code, done.output).toBe(0);
      const rec = await within(recorder.exited, 10_000, "the recorder's exit");
      expect(rec.code, rec.output).toBe(0);
      expect(await takeWrites()).toEqual(["start", "success"]);
      expect(readdirSync(d.backups)).toHaveLength(1);
    });
  }, 60_000);

  it("a run stopped at its time limit (both containers by SIGINT, the PostgreSQL images' STOPSIGNAL) is recorded once, by the backup's signal", async () => {
    await withHeldDump(async ({ d, recorder, backup }) => {
      backup.child.kill("SIGINT");
      recorder.kill("SIGINT");
      expect((await within(backup.exited, PATIENCE_MS, "the backup's exit")).code).toBe(130);
      expect(readFileSync(join(d.shared, "outcome"), "utf8")).toBe("SIGINT\n");
      const rec = await within(recorder.exited, 10_000, "the recorder's exit");
      expect(rec.code, rec.output).toBe(130);
      expect(await takeWrites()).toEqual(["start", "failure SIGINT"]);
      expect(readdirSync(d.backups)).toEqual([]);
      // pg_dump was stopped with the script.
      await expect.poll(async () => (await query("SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_dump'")).length, { timeout: PATIENCE_MS }).toBe(0);
    });
  }, 60_000);
});
