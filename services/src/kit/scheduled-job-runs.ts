/**
 * The outcome of a service's scheduled job (catalog `scheduledJob`, e.g. ml-predictor-retrain), kept
 * where every runtime sees it. The job's own process records its start, success or failure in
 * PostgreSQL (`scheduled_job_runs`, migration 0396) around the command (`runCommand`, the entry point
 * the Docker cron runner and a Kubernetes CronJob both start), and the owning service's long-running
 * replicas export the row on /metrics at scrape time for the alerts (components/monitoring/prometheus.ts).
 *
 * The bookkeeping never decides the job's outcome: a write that fails is logged and the job's own
 * exit code stands. A run that dies after its start was written (a signal, an out-of-memory kill,
 * the SIGKILL after its time limit's SIGTERM) leaves a start newer than any end, which
 * ScheduledJobRunUnfinished sees once the job's time limit has passed (a SIGTERM itself is recorded
 * as a failure: runRecorded); one that dies before even that leaves no success, which the overdue alert sees.
 */
import type { Logger } from "pino";
import { Gauge, type Registry } from "prom-client";
import { scheduledJobName, type ServiceDefinition } from "../catalog";
import type { Queryable } from "./datastores/postgres";
import { withTimeout } from "./deadline";
import { FailureStreak } from "./failure-streak";

/** Bound on each bookkeeping write and on the read of a scrape. */
export const RUNS_TIMEOUT_MS = 2_000;

const UPPER_CODE = /^[A-Z0-9][A-Z0-9_]{0,63}$/;
const CLASS_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/**
 * The short code recorded for a failed run: `EXIT_<n>` for an exit code, else the error's own code
 * when it is an upper-case code (HttpError's, a Node system error's, a SQLSTATE), else its class
 * name, else ERROR. Never its message: that can hold a secret or a peer's text.
 */
export function failureCode(outcome: { exitCode: number } | { error: unknown }): string {
  if ("exitCode" in outcome) return `EXIT_${Number.isInteger(outcome.exitCode) ? outcome.exitCode : "UNKNOWN"}`.slice(0, 64);
  const e = outcome.error;
  if (e !== null && typeof e === "object") {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && UPPER_CODE.test(code)) return code;
    const name = e.constructor?.name;
    if (typeof name === "string" && CLASS_NAME.test(name) && name !== "Object") return name;
  }
  return "ERROR";
}

export interface JobRunTimes {
  lastStartedAt: Date | null;
  lastSucceededAt: Date | null;
  lastFailedAt: Date | null;
  lastFailureCode: string | null;
}

/** The rows of scheduled_job_runs; times are the database's clock (one clock for every runtime). */
export class ScheduledJobRuns {
  constructor(private readonly db: Queryable) {}

  async started(job: string): Promise<void> {
    await this.db.query(
      `INSERT INTO scheduled_job_runs (job, last_started_at) VALUES ($1, statement_timestamp())
       ON CONFLICT (job) DO UPDATE SET last_started_at = excluded.last_started_at`,
      [job],
    );
  }

  async succeeded(job: string): Promise<void> {
    await this.db.query(
      `INSERT INTO scheduled_job_runs (job, last_succeeded_at) VALUES ($1, statement_timestamp())
       ON CONFLICT (job) DO UPDATE SET last_succeeded_at = excluded.last_succeeded_at`,
      [job],
    );
  }

  async failed(job: string, code: string): Promise<void> {
    await this.db.query(
      `INSERT INTO scheduled_job_runs (job, last_failed_at, last_failure_code) VALUES ($1, statement_timestamp(), $2)
       ON CONFLICT (job) DO UPDATE SET last_failed_at = excluded.last_failed_at, last_failure_code = excluded.last_failure_code`,
      [job, code],
    );
  }

  async read(job: string): Promise<JobRunTimes | undefined> {
    return (await this.readMany([job])).get(job);
  }

  /** The rows of `jobs` that exist, by job. */
  async readMany(jobs: readonly string[]): Promise<Map<string, JobRunTimes>> {
    const { rows } = await this.db.query<{ job: string; last_started_at: Date | null; last_succeeded_at: Date | null; last_failed_at: Date | null; last_failure_code: string | null }>(
      "SELECT job, last_started_at, last_succeeded_at, last_failed_at, last_failure_code FROM scheduled_job_runs WHERE job = ANY($1::text[])",
      [jobs],
    );
    return new Map(rows.map((r) => [r.job, { lastStartedAt: r.last_started_at, lastSucceededAt: r.last_succeeded_at, lastFailedAt: r.last_failed_at, lastFailureCode: r.last_failure_code }]));
  }
}

/** What the kit hands these functions: the service's definition, log and (lazily) its PostgreSQL. */
export interface ScheduledJobHost {
  definition: ServiceDefinition;
  log: Logger;
  /** The service's PostgreSQL, or undefined when it has none (its runs are then not recorded). */
  postgres: () => Queryable | undefined;
}

/** The service's scheduled job, when `argv` (command and arguments) is that job's command. */
export function scheduledJobOf(def: ServiceDefinition, argv: readonly string[]): string | undefined {
  const job = def.scheduledJob;
  if (!job || job.args.length !== argv.length || job.args.some((a, i) => a !== argv[i])) return undefined;
  return scheduledJobName(def.name, job.name);
}

/** Where a run hears that its runtime stops it, and how it then ends (the process, outside tests). */
export interface RunStopper {
  on(signal: "SIGTERM" | "SIGINT", listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: "SIGTERM" | "SIGINT", listener: (signal: NodeJS.Signals) => void): unknown;
  exit(code: number): void;
}
const processStopper: RunStopper = { on: (s, l) => process.on(s, l), off: (s, l) => process.off(s, l), exit: (code) => process.exit(code) };

/**
 * Runs a command and, when it is the service's scheduled job, records its start and its outcome
 * (an exit code other than 0 or a throw is a failure; a throw is passed on after the record).
 * A run stopped by its runtime (its image's STOPSIGNAL, SIGTERM for the services and trainer images,
 * which declare none: the time limit, a CronJob's activeDeadlineSeconds, a node drained; SIGINT
 * alike) records a failure coded by the signal received before the process exits 128 + n,
 * so ScheduledJobFailing fires at once instead of ScheduledJobRunUnfinished after the limit. The
 * write is bounded by RUNS_TIMEOUT_MS, well inside the 30 s both runtimes allow before SIGKILL.
 */
export async function runRecorded(host: ScheduledJobHost, argv: readonly string[], run: () => Promise<number>, stopper: RunStopper = processStopper): Promise<number> {
  const job = scheduledJobOf(host.definition, argv);
  if (job === undefined) return run();
  const db = host.postgres();
  if (!db) {
    host.log.warn({ job }, "scheduled job runs are not recorded: the service has no PostgreSQL");
    return run();
  }
  const runs = new ScheduledJobRuns(db);
  const keep = async (what: string, write: () => Promise<void>) => {
    try {
      await withTimeout(write(), RUNS_TIMEOUT_MS, "the write");
    } catch (e) {
      const err = e as { message?: unknown; code?: unknown };
      host.log.error({ job, record: what, err: { message: String(err?.message ?? e), code: err?.code } }, "could not record the scheduled job's run in scheduled_job_runs; the job's own outcome stands");
    }
  };
  await keep("start", () => runs.started(job));
  let stopped = false;
  const onStop = (signal: NodeJS.Signals) => {
    if (stopped) return;
    stopped = true;
    host.log.warn({ job, signal }, "the scheduled job was stopped by its runtime; recording the failure");
    void keep("failure", () => runs.failed(job, signal)).finally(() => stopper.exit(128 + (signal === "SIGINT" ? 2 : 15)));
  };
  stopper.on("SIGTERM", onStop);
  stopper.on("SIGINT", onStop);
  let code: number;
  try {
    code = await run();
  } catch (e) {
    if (!stopped) await keep("failure", () => runs.failed(job, failureCode({ error: e })));
    throw e;
  } finally {
    stopper.off("SIGTERM", onStop);
    stopper.off("SIGINT", onStop);
  }
  // A stopped run's failure is recorded by onStop, which ends the process.
  if (stopped) return code;
  await (code === 0 ? keep("success", () => runs.succeeded(job)) : keep("failure", () => runs.failed(job, failureCode({ exitCode: code }))));
  return code;
}

/** The jobs whose runs the service exports: its own scheduled job, then those of catalog `exportsJobRuns` (the PostgreSQL backup's). */
export function exportedJobs(def: ServiceDefinition): string[] {
  return [...(def.scheduledJob ? [scheduledJobName(def.name, def.scheduledJob.name)] : []), ...(def.exportsJobRuns ?? [])];
}

/**
 * Gauges of the service's exported jobs (exportedJobs) on its registry, read from scheduled_job_runs
 * at scrape time: one query for all of them, bounded by RUNS_TIMEOUT_MS. A read that
 * fails leaves them out of that scrape (logged when it starts failing and when it recovers); the
 * rest of /metrics is served. Labelled `scheduled_job`: `job` is the scrape's own label.
 */
export function exportScheduledJobRuns(host: ScheduledJobHost, registry: Registry): void {
  const jobs = exportedJobs(host.definition);
  if (jobs.length === 0) return;
  let inflight: Promise<Map<string, JobRunTimes>> | undefined;
  const failures = new FailureStreak();
  // prom-client collects a registry's metrics concurrently: the three gauges share the read in flight.
  const read = (): Promise<Map<string, JobRunTimes>> => (inflight ??= readOnce().finally(() => (inflight = undefined)));
  const readOnce = (): Promise<Map<string, JobRunTimes>> => {
    const db = host.postgres();
    const attempt = db ? withTimeout(new ScheduledJobRuns(db).readMany(jobs), RUNS_TIMEOUT_MS, "the read") : Promise.resolve(new Map<string, JobRunTimes>());
    return attempt.then(
      (times) => {
        if (failures.worked() > 0) host.log.info({ jobs }, "scheduled_job_runs is readable again");
        return times;
      },
      (e: unknown) => {
        if (failures.failed()) host.log.warn({ jobs, err: { message: (e as Error)?.message } }, "cannot read scheduled_job_runs: the scheduled jobs' gauges are left out of /metrics");
        return new Map<string, JobRunTimes>();
      },
    );
  };
  // The failure's gauge carries its code (a short code, never a message): the alert names it.
  const gauge = (name: string, help: string, value: (t: JobRunTimes) => Date | null, withCode = false) =>
    new Gauge({
      name,
      help,
      labelNames: withCode ? ["scheduled_job", "code"] : ["scheduled_job"],
      registers: [registry],
      async collect() {
        const byJob = await read();
        this.reset();
        for (const [job, times] of byJob) {
          const at = value(times);
          if (at) this.set(withCode ? { scheduled_job: job, code: times.lastFailureCode ?? "ERROR" } : { scheduled_job: job }, at.getTime() / 1000);
        }
      },
    });
  gauge("scheduled_job_last_start_timestamp_seconds", "Start of the scheduled job's last run (unix seconds; scheduled_job_runs); absent before the first", (t) => t.lastStartedAt);
  gauge("scheduled_job_last_success_timestamp_seconds", "End of the scheduled job's last successful run (unix seconds; scheduled_job_runs); absent before the first", (t) => t.lastSucceededAt);
  gauge("scheduled_job_last_failure_timestamp_seconds", "End of the scheduled job's last failed run (unix seconds; scheduled_job_runs), with its code; absent before the first", (t) => t.lastFailedAt, true);
}
