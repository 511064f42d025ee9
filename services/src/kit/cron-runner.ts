/**
 * The scheduler of runtimes without one (the Docker target): a long-running process that runs a
 * job command at each tick of a cron schedule, as a Kubernetes CronJob with
 * `concurrencyPolicy: Forbid` would: never two runs at once (a tick during a run is skipped and
 * counted), a run past its time limit stopped as `activeDeadlineSeconds` stops a CronJob's (SIGTERM,
 * then SIGKILL after a grace period), each run's start and exit logged, the last success time kept
 * and served (`/health` JSON), run counts served on `/metrics` for Prometheus. Schedules are parsed and timed by croner, not by hand.
 *
 * The job's environment is the runner's own (credentials come from the container's env, never
 * from arguments), so logging the command line leaks nothing.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Cron } from "croner";
import type { Logger } from "pino";
import { Counter, Gauge, Registry } from "prom-client";
import { isNamelessParameterIssue, NAMELESS_PARAMETER_FIELD, unknownParameterIssue } from "./query-parameters";
import { pathOf } from "./request-path";

/** A Kubernetes pod's default terminationGracePeriodSeconds. */
export const DEFAULT_KILL_GRACE_SECONDS = 30;

export interface CronRunnerOptions {
  /** Job name in logs and metrics labels. */
  name: string;
  /** Cron expression (UTC): five fields, or six with seconds first (croner's syntax). */
  schedule: string;
  /** Exec form: program and arguments, run without a shell. */
  command: string[];
  log: Logger;
  /** Time limit of one run, in seconds: then SIGTERM, and SIGKILL killGraceSeconds later. None: unbounded. */
  timeoutSeconds?: number;
  /** Between the SIGTERM at the time limit and the SIGKILL (a pod's default terminationGracePeriodSeconds). */
  killGraceSeconds?: number;
  /** Clock of the status (tests may inject one; croner keeps its own timers). */
  now?: () => Date;
}

export interface RunRecord {
  startedAt: string;
  finishedAt?: string;
  /** Exit code; null when the process was ended by a signal or could not start. */
  exitCode?: number | null;
  signal?: string | null;
  error?: string;
  /** Stopped at its time limit. */
  timedOut?: boolean;
}

export interface RunnerStatus {
  job: string;
  schedule: string;
  running: boolean;
  nextRunAt: string | null;
  runs: number;
  succeeded: number;
  failed: number;
  /** Ticks that came while a run was still going (not run: concurrency is forbidden). */
  skipped: number;
  lastRun: RunRecord | null;
  lastSuccessAt: string | null;
}

export class CronRunner {
  private readonly cron: Cron;
  private readonly now: () => Date;
  private child: ChildProcess | undefined;
  private current: Promise<void> | undefined;
  private stopping = false;
  private readonly state: Omit<RunnerStatus, "job" | "schedule" | "running" | "nextRunAt"> = {
    runs: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
    lastRun: null,
    lastSuccessAt: null,
  };

  constructor(private readonly options: CronRunnerOptions) {
    if (options.command.length === 0) throw new Error(`cron job '${options.name}': no command to run`);
    for (const [key, value] of [["timeoutSeconds", options.timeoutSeconds], ["killGraceSeconds", options.killGraceSeconds]] as const) {
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) throw new Error(`cron job '${options.name}': ${key} must be a positive number of seconds, got ${value}`);
    }
    this.now = options.now ?? (() => new Date());
    // Throws on a bad expression, naming what is wrong, before anything is scheduled.
    this.cron = new Cron(options.schedule, {
      paused: true,
      timezone: "UTC",
      mode: "5-or-6-parts",
      // Overrun protection is croner's: a tick while the previous run's promise is pending is
      // not run; the callback counts and logs it.
      protect: () => this.skip(),
    }, () => this.runOnce());
  }

  /** Starts ticking; returns this for chaining. */
  start(): this {
    this.options.log.info({ job: this.options.name, schedule: this.options.schedule, command: this.options.command, nextRunAt: this.nextRunAt() }, "scheduler started");
    this.cron.resume();
    return this;
  }

  /** Stops ticking, asks a running job to end (SIGTERM) and waits for it. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.cron.stop();
    if (this.child && this.child.exitCode === null) this.child.kill("SIGTERM");
    await this.current;
  }

  status(): RunnerStatus {
    return {
      job: this.options.name,
      schedule: this.options.schedule,
      running: this.current !== undefined,
      nextRunAt: this.nextRunAt(),
      ...this.state,
      lastRun: this.state.lastRun && { ...this.state.lastRun },
    };
  }

  private nextRunAt(): string | null {
    return this.stopping ? null : (this.cron.nextRun()?.toISOString() ?? null);
  }

  private skip(): void {
    this.state.skipped++;
    this.options.log.warn({ job: this.options.name, runningSince: this.state.lastRun?.startedAt }, "tick skipped: the previous run is still going");
  }

  /** One run of the command; the promise croner's overrun protection waits on. */
  private runOnce(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    const [program, ...args] = this.options.command;
    const record: RunRecord = { startedAt: this.now().toISOString() };
    this.state.runs++;
    this.state.lastRun = record;
    this.options.log.info({ job: this.options.name, run: this.state.runs }, "run started");
    const done = new Promise<void>((resolve) => {
      const child = spawn(program, args, { stdio: ["ignore", "inherit", "inherit"] });
      this.child = child;
      const limit = this.limitRun(child, record);
      const finish = (exitCode: number | null, signal: NodeJS.Signals | null, error?: Error) => {
        limit.clear();
        record.finishedAt = this.now().toISOString();
        record.exitCode = exitCode;
        record.signal = signal;
        if (error) record.error = error.message;
        const seconds = (Date.parse(record.finishedAt) - Date.parse(record.startedAt)) / 1000;
        if (exitCode === 0) {
          this.state.succeeded++;
          this.state.lastSuccessAt = record.finishedAt;
          this.options.log.info({ job: this.options.name, run: this.state.runs, exitCode, seconds }, "run succeeded");
        } else {
          this.state.failed++;
          this.options.log.error({ job: this.options.name, run: this.state.runs, exitCode, signal, error: error?.message, timedOut: record.timedOut, seconds }, "run failed");
        }
        this.child = undefined;
        resolve();
      };
      // 'error' (cannot spawn) and 'close' may both fire: the first one wins.
      let settled = false;
      child.once("error", (e) => settled || ((settled = true), finish(null, null, e)));
      child.once("close", (code, signal) => settled || ((settled = true), finish(code, signal)));
    });
    this.current = done.finally(() => (this.current = undefined));
    return this.current;
  }

  /** Stops `child` at the time limit: SIGTERM (the job may record its end), SIGKILL after the grace period. */
  private limitRun(child: ChildProcess, record: RunRecord): { clear: () => void } {
    const { timeoutSeconds, killGraceSeconds = DEFAULT_KILL_GRACE_SECONDS } = this.options;
    if (timeoutSeconds === undefined) return { clear: () => undefined };
    let kill: NodeJS.Timeout | undefined;
    const term = setTimeout(() => {
      record.timedOut = true;
      this.options.log.error({ job: this.options.name, run: this.state.runs, timeoutSeconds }, "run past its time limit: stopping it");
      child.kill("SIGTERM");
      kill = setTimeout(() => child.kill("SIGKILL"), killGraceSeconds * 1000);
    }, timeoutSeconds * 1000);
    return { clear: () => (clearTimeout(term), clearTimeout(kill)) };
  }
}

/** Prometheus metrics of a runner, read at scrape time. */
export function runnerMetrics(runner: CronRunner): Registry {
  const registry = new Registry();
  const s = () => runner.status();
  const labelNames = ["job"] as const;
  const gauge = (name: string, help: string, value: (st: RunnerStatus) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        const st = s();
        const v = value(st);
        this.reset();
        if (v !== undefined) this.set({ job: st.job }, v);
      },
    });
  // The last success (and failure) times are the job's own record, exported by the owning service
  // on every runtime (kit/scheduled-job-runs.ts): not repeated here under the same name.
  gauge("scheduled_job_last_exit_code", "Exit code of the last finished run (-1: ended by a signal or could not start)", (st) =>
    st.lastRun?.finishedAt === undefined ? undefined : (st.lastRun.exitCode ?? -1),
  );
  gauge("scheduled_job_running", "1 while a run is going", (st) => (st.running ? 1 : 0));
  gauge("scheduled_job_next_run_timestamp_seconds", "Next scheduled tick (unix seconds)", (st) => (st.nextRunAt ? Date.parse(st.nextRunAt) / 1000 : undefined));
  new Counter({
    name: "scheduled_job_runs_total",
    help: "Finished runs by outcome, and ticks skipped because a run was still going",
    labelNames: ["job", "outcome"] as const,
    registers: [registry],
    collect() {
      const st = s();
      this.reset();
      this.inc({ job: st.job, outcome: "succeeded" }, st.succeeded);
      this.inc({ job: st.job, outcome: "failed" }, st.failed);
      this.inc({ job: st.job, outcome: "skipped" }, st.skipped);
    },
  });
  return registry;
}

/**
 * GET /health (200 and the status as JSON while the runner is alive: a failed run is reported,
 * not a reason to restart the scheduler) and GET /metrics. Listens on `port` (0: any free one).
 * Neither takes a query parameter, as the services' probes (./query-parameters.ts): the container's
 * liveness probe and Prometheus ask the bare paths; any parameter is a 400 naming it.
 */
export async function serveRunnerStatus(runner: CronRunner, port: number, host = "0.0.0.0"): Promise<{ server: Server; port: number }> {
  const metrics = runnerMetrics(runner);
  const server = createServer((req, res) => {
    const path = pathOf(req.url ?? "/");
    const refused = path === "/health" || path === "/metrics" ? queryIssue(req.url ?? "/") : undefined;
    if (req.method !== "GET") {
      res.writeHead(405, { "content-type": "application/json", allow: "GET" }).end(JSON.stringify({ error: "METHOD_NOT_ALLOWED" }));
    } else if (refused) {
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: refused }));
    } else if (path === "/health") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(runner.status()));
    } else if (path === "/metrics") {
      metrics.metrics().then(
        (text) => res.writeHead(200, { "content-type": metrics.contentType }).end(text),
        (e: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(e.message),
      );
    } else {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "NOT_FOUND", path }));
    }
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, host, resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** The error of a status route's query (it takes none), in the services' words (errors.ts), or undefined when it has no parameter. */
function queryIssue(url: string): { code: "VALIDATION_ERROR"; message: string; field?: string } | undefined {
  const query = url.split("#")[0].split("?").slice(1).join("?");
  const issue = unknownParameterIssue(new Set(), Object.fromEntries([...new URLSearchParams(query).keys()].map((k) => [k, ""])));
  if (!issue) return undefined;
  if (isNamelessParameterIssue(issue)) return { code: "VALIDATION_ERROR", message: `Invalid querystring: ${issue.message}`, field: NAMELESS_PARAMETER_FIELD };
  const field = String(issue.params?.additionalProperty ?? "");
  return { code: "VALIDATION_ERROR", message: `Invalid querystring: ${field} ${issue.message}`, field };
}
