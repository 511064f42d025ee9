/**
 * A service's scheduled job records its runs in PostgreSQL (scheduled_job_runs, migration 0396) from
 * its own process, the kit's runCommand that both runtimes start, and the service's /metrics exports
 * them (kit/scheduled-job-runs.ts). Real PostgreSQL; the job is ml-predictor's catalog `scheduledJob`
 * (`train`, ml-predictor-retrain) run by a module of the same name whose command the test controls,
 * so no training is needed. Also: a bookkeeping write that fails does not fail the job, and a read
 * that fails does not break /metrics.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useServers } from "../harness/shared";
import { createService, defineService, runCommand, type Service } from "../../services/src/kit";
import { runRecorded, type RunStopper } from "../../services/src/kit/scheduled-job-runs";
import { findService } from "../../services/src/catalog";
import { createLogger } from "../../services/src/kit/app";
import databaseService from "../../services/src/services/database-service";
import { pg } from "../harness";

const srv = useServers("postgres");
const JOB = "ml-predictor-retrain";
/** ClickHouse is required by ml-predictor's catalog entry but never reached here. */
const NO_CLICKHOUSE = { CLICKHOUSE_URL: "http://127.0.0.1:9" };

type Outcome = { exit: number } | { throws: Error };
let next: Outcome = { exit: 0 };
const jobModule = defineService({
  name: "ml-predictor",
  register() {},
  commands: {
    async train() {
      if ("throws" in next) throw next.throws;
      return next.exit;
    },
    async other() {
      return 0;
    },
  },
});

let env: Record<string, string>;
let svc: Service;

async function row() {
  const c = new pg.Client({ connectionString: srv.postgres.url });
  await c.connect();
  try {
    const { rows } = await c.query("SELECT * FROM scheduled_job_runs WHERE job = $1", [JOB]);
    return rows[0] as { last_started_at: Date | null; last_succeeded_at: Date | null; last_failed_at: Date | null; last_failure_code: string | null } | undefined;
  } finally {
    await c.end();
  }
}

const seconds = (d: Date | null | undefined) => (d ? d.getTime() / 1000 : undefined);
async function gauges(service: Service) {
  const res = await service.app.inject({ method: "GET", url: "/metrics" });
  expect(res.statusCode).toBe(200);
  const value = (name: string) => {
    const m = res.body.match(new RegExp(`^${name}\\{[^}]*scheduled_job="${JOB}"[^}]*\\} (\\S+)$`, "m"));
    return m ? Number(m[1]) : undefined;
  };
  return {
    body: res.body,
    start: value("scheduled_job_last_start_timestamp_seconds"),
    success: value("scheduled_job_last_success_timestamp_seconds"),
    failure: value("scheduled_job_last_failure_timestamp_seconds"),
  };
}

function logSink() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n")) if (l.trim()) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, stream };
}

beforeAll(async () => {
  expect(await runCommand(databaseService, "migrate", [], { env: { ...srv.env, LOG_LEVEL: "silent" }, defaultMetrics: false })).toBe(0);
  env = { ...srv.env, ...NO_CLICKHOUSE, LOG_LEVEL: "silent" };
  svc = await createService(jobModule, { env, defaultMetrics: false });
}, 120_000);
afterAll(() => svc?.close());

describe("scheduled job runs", () => {
  it("before any run the gauges are absent and /metrics still answers", async () => {
    expect(await row()).toBeUndefined();
    const g = await gauges(svc);
    expect(g).toMatchObject({ start: undefined, success: undefined, failure: undefined });
    expect(g.body).toContain("# TYPE scheduled_job_last_success_timestamp_seconds gauge");
  });

  it("records a success, then a failure by exit code, then a throw by its code; /metrics exports each", async () => {
    next = { exit: 0 };
    expect(await runCommand(jobModule, "train", [], { env, defaultMetrics: false })).toBe(0);
    const ok = (await row())!;
    expect(ok.last_succeeded_at).not.toBeNull();
    expect(ok.last_failed_at).toBeNull();
    expect(ok.last_started_at!.getTime()).toBeLessThanOrEqual(ok.last_succeeded_at!.getTime());
    let g = await gauges(svc);
    expect(g.success).toBeCloseTo(seconds(ok.last_succeeded_at)!, 3);
    expect(g.start).toBeCloseTo(seconds(ok.last_started_at)!, 3);
    expect(g.failure).toBeUndefined();

    next = { exit: 3 };
    expect(await runCommand(jobModule, "train", [], { env, defaultMetrics: false })).toBe(3);
    const failed = (await row())!;
    expect(failed).toMatchObject({ last_failure_code: "EXIT_3", last_succeeded_at: ok.last_succeeded_at });
    expect(failed.last_failed_at!.getTime()).toBeGreaterThan(ok.last_succeeded_at!.getTime());
    g = await gauges(svc);
    expect(g.failure).toBeCloseTo(seconds(failed.last_failed_at)!, 3);
    expect(g.body).toMatch(/^scheduled_job_last_failure_timestamp_seconds\{[^}]*code="EXIT_3"/m);
    expect(g.failure!).toBeGreaterThan(g.success!);

    // A throw is recorded by its code, never its message, and passed on.
    const secret = Object.assign(new Error("password=hunter2 at peer"), { code: "ECONNREFUSED" });
    next = { throws: secret };
    await expect(runCommand(jobModule, "train", [], { env, defaultMetrics: false })).rejects.toBe(secret);
    expect((await row())!.last_failure_code).toBe("ECONNREFUSED");
    next = { throws: new TypeError("token abc in a message") };
    await expect(runCommand(jobModule, "train", [], { env, defaultMetrics: false })).rejects.toThrow(TypeError);
    expect((await row())!.last_failure_code).toBe("TypeError");

    // A success after failures: the failure is older than the success again.
    next = { exit: 0 };
    expect(await runCommand(jobModule, "train", [], { env, defaultMetrics: false })).toBe(0);
    const back = (await row())!;
    expect(back.last_succeeded_at!.getTime()).toBeGreaterThan(back.last_failed_at!.getTime());
  });

  it.each([
    // At the time limit: the stop signal of the services and trainer images (no STOPSIGNAL: SIGTERM).
    ["SIGTERM", 143],
    // A person's Ctrl-C, or an image whose STOPSIGNAL is SIGINT.
    ["SIGINT", 130],
  ] as const)("a run its runtime stops with %s records a failure coded by that signal, then exits %i", async (signal, exitCode) => {
    const listeners = new Map<string, (s: NodeJS.Signals) => void>();
    let exit: (code: number) => void = () => {};
    const exited = new Promise<number>((resolve) => (exit = resolve));
    const stopper: RunStopper = {
      on: (s, l) => listeners.set(s, l),
      off: (s, l) => listeners.get(s) === l && listeners.delete(s),
      exit: (code) => exit(code),
    };
    const c = new pg.Client({ connectionString: srv.postgres.url });
    await c.connect();
    try {
      let release: (code: number) => void = () => {};
      const running = runRecorded({ definition: findService("ml-predictor")!, log: createLogger("job-runs-test", "silent"), postgres: () => c }, ["train"], () => new Promise<number>((r) => (release = r)), stopper);
      await expect.poll(() => listeners.has(signal)).toBe(true);
      const started = (await row())!.last_started_at!;
      listeners.get(signal)!(signal);
      expect(await exited).toBe(exitCode);
      const stopped = (await row())!;
      expect(stopped.last_failure_code).toBe(signal);
      expect(stopped.last_failed_at!.getTime()).toBeGreaterThanOrEqual(started.getTime());
      // The job ending by itself afterwards records nothing more, and the listeners are gone.
      release(0);
      expect(await running).toBe(0);
      expect((await row())!).toEqual(stopped);
      expect(listeners.size).toBe(0);
    } finally {
      await c.end();
    }
  });

  it("another command of the service is not the scheduled job: not recorded", async () => {
    const before = await row();
    expect(await runCommand(jobModule, "other", [], { env, defaultMetrics: false })).toBe(0);
    expect(await row()).toEqual(before);
  });

  it("a bookkeeping write that fails is logged and leaves the job's outcome; a read that fails leaves /metrics up", async () => {
    const unreachable = { ...env, POSTGRES_URL: "postgres://nobody:x@127.0.0.1:9/none", POSTGRES_CONNECT_TIMEOUT_MS: "500", LOG_LEVEL: "info" };
    const log = logSink();
    next = { exit: 0 };
    expect(await runCommand(jobModule, "train", [], { env: unreachable, defaultMetrics: false, logStream: log.stream })).toBe(0);
    const complaints = log.lines.filter((l) => l.msg === "could not record the scheduled job's run in scheduled_job_runs; the job's own outcome stands");
    expect(complaints.map((l) => l.record)).toEqual(["start", "success"]);
    expect(complaints[0]).toMatchObject({ job: JOB, level: 50 });

    const blind = await createService(jobModule, { env: unreachable, defaultMetrics: false, logStream: logSink().stream });
    try {
      const g = await gauges(blind);
      expect(g).toMatchObject({ start: undefined, success: undefined, failure: undefined });
      expect(g.body).toContain("http_request_duration_seconds");
    } finally {
      await blind.close();
    }
  });
});
