/**
 * The cron runner (services/src/kit/cron-runner.ts, services/src/cron.ts), the Docker target's
 * scheduler, against real processes on a schedule of every second. Nothing depends on timing: each
 * run holds until the test releases it (a file appears), so "a tick came during a run" is waited
 * for, not assumed, and every wait is vi.waitFor on the runner's status.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../../services/src/kit/app";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CronRunner, serveRunnerStatus } from "../../services/src/kit/cron-runner";
import { freePort, makeTempDir, removeDir } from "../harness/proc";

const EVERY_SECOND = "* * * * * *";
const WAIT = { timeout: 60_000, interval: 50 };
const silent = createLogger("cron-test", "silent");

/** A job that counts its runs, notes an overlap, waits for release-<n> and exits with exit-<n> (0). */
function heldJob(dir: string): string[] {
  const script = [
    "set -eu",
    'n=$(cat "$D/count" 2>/dev/null || echo 0); n=$((n+1)); echo "$n" > "$D/count"',
    '[ ! -e "$D/running" ] || echo "overlap in run $n" >> "$D/overlaps"',
    'touch "$D/running"',
    'trap \'rm -f "$D/running"; echo "$n" >> "$D/terminated"; exit 143\' TERM',
    // After the trap: a test that signals the run waits for this, or a SIGTERM sent before the trap
    // is installed kills the shell without a trace (it failed the clean-clone CI once).
    'touch "$D/trapped-$n"',
    'while [ ! -e "$D/release-$n" ]; do sleep 0.05; done',
    'rm -f "$D/running"',
    'exit "$(cat "$D/exit-$n" 2>/dev/null || echo 0)"',
  ].join("\n");
  return ["sh", "-c", script.replaceAll("$D", dir)];
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("CronRunner", () => {
  it("never runs twice at once, skips and counts ticks during a run, records each exit code and the last success", async () => {
    const dir = makeTempDir("cron-runner-");
    cleanups.push(() => removeDir(dir));
    const runner = new CronRunner({ name: "held", schedule: EVERY_SECOND, command: heldJob(dir), log: silent }).start();
    cleanups.push(() => runner.stop());

    await vi.waitFor(() => expect(runner.status()).toMatchObject({ running: true, runs: 1 }), WAIT);
    // Ticks keep coming while run 1 is held: they are skipped, not started.
    await vi.waitFor(() => expect(runner.status().skipped).toBeGreaterThanOrEqual(2), WAIT);
    expect(runner.status().runs).toBe(1);

    writeFileSync(join(dir, "exit-1"), "3");
    writeFileSync(join(dir, "release-1"), "");
    await vi.waitFor(() => expect(runner.status()).toMatchObject({ failed: 1 }), WAIT);
    let st = runner.status();
    expect(st.lastRun).toMatchObject({ exitCode: 3, signal: null });
    expect(st.lastRun!.finishedAt! >= st.lastRun!.startedAt).toBe(true);
    expect(st.lastSuccessAt).toBeNull();

    // The next tick starts run 2; it succeeds.
    await vi.waitFor(() => expect(runner.status()).toMatchObject({ running: true, runs: 2 }), WAIT);
    writeFileSync(join(dir, "release-2"), "");
    await vi.waitFor(() => expect(runner.status().succeeded).toBe(1), WAIT);
    st = runner.status();
    expect(st.lastRun).toMatchObject({ exitCode: 0 });
    expect(st.lastSuccessAt).toBe(st.lastRun!.finishedAt);
    expect(st.failed).toBe(1);

    await runner.stop();
    expect(existsSync(join(dir, "overlaps"))).toBe(false);
    // Every run the job saw was one the runner started. stop() ends a possible run 3 with SIGTERM,
    // which may reach the shell before it counted itself.
    const runs = runner.status().runs;
    expect([runs - 1, runs]).toContain(Number(readFileSync(join(dir, "count"), "utf8")));
    expect(runner.status().nextRunAt).toBeNull();
  });

  it("records a command that cannot start as a failed run, and keeps ticking", async () => {
    const runner = new CronRunner({ name: "missing", schedule: EVERY_SECOND, command: ["/nonexistent/program"], log: silent }).start();
    cleanups.push(() => runner.stop());
    await vi.waitFor(() => expect(runner.status().failed).toBeGreaterThanOrEqual(2), WAIT);
    expect(runner.status().lastRun).toMatchObject({ exitCode: null, error: expect.stringContaining("ENOENT") });
  });

  it("stops a run at its time limit: SIGTERM, and SIGKILL after the grace period when the job ignores it", async () => {
    const dir = makeTempDir("cron-timeout-");
    cleanups.push(() => removeDir(dir));
    /** The runner's log entries: "run failed" of the first run (later ticks start more runs). */
    const entries: Array<Record<string, unknown>> = [];
    const log = createLogger("cron-test", "info", { write: (line: string) => void entries.push(JSON.parse(line)) });
    const firstFailure = () => entries.find((e) => e.msg === "run failed" && e.run === 1);

    // Honours SIGTERM (its trap exits 143): stopped at 1 s, its own exit recorded.
    const polite = new CronRunner({ name: "polite", schedule: EVERY_SECOND, command: heldJob(dir), timeoutSeconds: 1, killGraceSeconds: 30, log }).start();
    cleanups.push(() => polite.stop());
    await vi.waitFor(() => expect(firstFailure()).toBeDefined(), WAIT);
    expect(entries.find((e) => e.msg === "run past its time limit: stopping it")).toMatchObject({ job: "polite", run: 1, timeoutSeconds: 1 });
    // A SIGTERM that came before the shell's trap ends it by the signal instead of its trap.
    const stopped = firstFailure()!;
    expect(stopped).toMatchObject({ job: "polite", timedOut: true });
    expect([143, null]).toContain(stopped.exitCode);
    expect(Number(stopped.seconds)).toBeLessThan(30);
    await polite.stop();

    // Ignores SIGTERM: killed killGraceSeconds after the limit.
    entries.length = 0;
    const stubborn = ["sh", "-c", 'trap "" TERM; while :; do sleep 0.1; done'];
    const runner = new CronRunner({ name: "stubborn", schedule: EVERY_SECOND, command: stubborn, timeoutSeconds: 2, killGraceSeconds: 1, log }).start();
    cleanups.push(() => runner.stop());
    await vi.waitFor(() => expect(firstFailure()).toBeDefined(), WAIT);
    expect(firstFailure()).toMatchObject({ job: "stubborn", timedOut: true, exitCode: null, signal: "SIGKILL" });
    expect(Number(firstFailure()!.seconds)).toBeGreaterThanOrEqual(3);
  });

  it("rejects a bad schedule or an empty command before scheduling anything", () => {
    expect(() => new CronRunner({ name: "bad", schedule: "every day", command: ["true"], log: silent })).toThrow();
    expect(() => new CronRunner({ name: "bad", schedule: "61 * * * *", command: ["true"], log: silent })).toThrow();
    expect(() => new CronRunner({ name: "empty", schedule: "0 3 * * *", command: [], log: silent })).toThrow(/no command/);
    expect(() => new CronRunner({ name: "limit", schedule: "0 3 * * *", command: ["true"], timeoutSeconds: 0, log: silent })).toThrow(/timeoutSeconds must be a positive/);
    expect(() => new CronRunner({ name: "limit", schedule: "0 3 * * *", command: ["true"], killGraceSeconds: -1, log: silent })).toThrow(/killGraceSeconds must be a positive/);
  });

  it("serves its status on /health and /metrics", async () => {
    const runner = new CronRunner({ name: "quick", schedule: EVERY_SECOND, command: ["true"], log: silent }).start();
    cleanups.push(() => runner.stop());
    const { server, port } = await serveRunnerStatus(runner, 0, "127.0.0.1");
    cleanups.push(() => new Promise((r) => server.close(r)));
    await vi.waitFor(() => expect(runner.status().succeeded).toBeGreaterThanOrEqual(1), WAIT);
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ job: "quick", schedule: EVERY_SECOND, lastSuccessAt: expect.any(String), lastRun: expect.any(Object) });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    // The last success is the job's own record, exported by its service (scheduled-job-runs.test.ts).
    expect(metrics).not.toContain("scheduled_job_last_success_timestamp_seconds");
    expect(metrics).toMatch(/^scheduled_job_runs_total\{job="quick",outcome="succeeded"\} [1-9]/m);
    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/health`, { method: "POST" })).status).toBe(405);
    // No query parameter taken, as the services' probes (kit query-parameters.ts): a 400 naming it, not ignored.
    for (const path of ["/health", "/metrics"]) {
      const r = await fetch(`http://127.0.0.1:${port}${path}?limit=5`);
      expect(r.status, path).toBe(400);
      expect(await r.json(), path).toEqual({ error: { code: "VALIDATION_ERROR", field: "limit", message: "Invalid querystring: limit is not a parameter of this route (it takes none)" } });
    }
    expect((await (await fetch(`http://127.0.0.1:${port}/health?=1`)).json()).error).toEqual({ code: "VALIDATION_ERROR", field: "query", message: "Invalid querystring: a parameter has no name (nothing before its \"=\"): name it or leave it out (this route takes none)" });
    expect((await fetch(`http://127.0.0.1:${port}/health?`)).status).toBe(200);
  });
});

describe("cron.js (the container's entry point)", () => {
  const entry = join(__dirname, "..", "..", "services", "src", "cron.ts");
  const start = (args: string[]) => {
    const child = spawn(process.execPath, ["--import", "tsx", entry, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: "info" } });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    return { child, exited, output: () => output };
  };

  it("runs the job at each tick, logs start and exit, and on SIGTERM ends the running job and exits 0", async () => {
    const dir = makeTempDir("cron-entry-");
    cleanups.push(() => removeDir(dir));
    const port = await freePort();
    const proc = start(["--name", "entry", "--schedule", EVERY_SECOND, "--port", String(port), "--", ...heldJob(dir)]);
    cleanups.push(() => proc.child.kill("SIGKILL"));
    writeFileSync(join(dir, "release-1"), "");
    await vi.waitFor(async () => {
      const st = await (await fetch(`http://127.0.0.1:${port}/health`)).json();
      expect(st).toMatchObject({ succeeded: 1, runs: 2, running: true });
      expect(existsSync(join(dir, "trapped-2"))).toBe(true);
    }, WAIT);
    proc.child.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    // Run 2 was held when the runner stopped: it got SIGTERM and was waited for.
    expect(readFileSync(join(dir, "terminated"), "utf8").trim()).toBe("2");
    const lines = proc.output().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { msg: string; exitCode?: number });
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(["scheduler started", "run started", "run succeeded", "run failed", "stopping the scheduler"]));
    expect(lines.find((l) => l.msg === "run succeeded")?.exitCode).toBe(0);
  });

  it("refuses a bad schedule with a clear message and exit code 2", async () => {
    const proc = start(["--name", "bad", "--schedule", "whenever", "--", "true"]);
    expect(await proc.exited).toBe(2);
    expect(proc.output()).toContain("invalid --schedule 'whenever'");
  });

  it("refuses a --timeout that is not a positive whole number of seconds", async () => {
    const proc = start(["--name", "bad", "--schedule", "0 3 * * *", "--timeout", "1h", "--", "true"]);
    expect(await proc.exited).toBe(2);
    expect(proc.output()).toContain("--timeout must be a positive whole number of seconds, got '1h'");
  });
});
