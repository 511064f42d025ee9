/**
 * Alerts on the services' scheduled jobs (catalog `scheduledJob`), on every runtime, and on the
 * PostgreSQL and ClickHouse backups where they are scheduled (Kubernetes; exported by
 * database-service, catalog `exportsJobRuns`; topology.ts recordedBackups). They read what
 * the job's own runs record (scheduled_job_runs) and the owning service exports on /metrics
 * (services/src/kit/scheduled-job-runs.ts: scheduled_job_last_{start,success,failure}_timestamp_seconds
 * {scheduled_job}), so a Kubernetes CronJob is covered as the Docker cron runner's job is. How long
 * a job may go without a success comes from its cron schedule (the stack's, e.g. mlRetrainSchedule);
 * how long one run may last, from its time limit (runTimeoutSeconds), which the runtimes enforce.
 */
import { GAP_SAMPLE_FROM, tickGaps, type TickGaps } from "../../stacks/cron-gaps";
import type { AlertRule } from "./prometheus";

/** Missed ticks tolerated before a job is overdue: one can fail or be skipped, two in a row are a pattern. */
export const OVERDUE_INTERVALS = 2;
/** Added to the intervals for the run's own duration (a success is stamped when the run ends) and the scrape/evaluation delay. */
export const OVERDUE_MARGIN_SECONDS = 3_600;

/**
 * The gaps of a schedule the stack config accepted (stacks/config.ts refuses one that fires at most
 * once, naming its key): throwing here is a program error, not a configuration one.
 */
function tickGapsSeconds(schedule: string): TickGaps {
  const gaps = tickGaps(schedule);
  if (!gaps) throw new Error(`schedule '${schedule}' fires at most once from ${GAP_SAMPLE_FROM.toISOString()}: no interval to derive an alert from`);
  return gaps;
}

/**
 * The longest time between two consecutive ticks of a five-field cron schedule (UTC, croner's reading,
 * as the cron runner's and, for the syntax the stack accepts, a CronJob's), in seconds: "30 3 * * *"
 * -> 86,400; "0 9 * * 1-5" -> 259,200 (Friday to Monday). Sampled over stacks/cron-gaps.ts's span.
 */
export function longestGapSeconds(schedule: string): number {
  return tickGapsSeconds(schedule).longest;
}

/** The shortest time between two consecutive ticks, sampled as longestGapSeconds: "0 8,20 * * *" -> 43,200; "0 9,10 * * *" -> 3,600. */
export function shortestGapSeconds(schedule: string): number {
  return tickGapsSeconds(schedule).shortest;
}

/** Time limit of one run of a job whose catalog `scheduledJob` gives none. */
export const DEFAULT_RUN_TIMEOUT_SECONDS = 3_600;

/**
 * The time limit of one run of a scheduled job on `schedule`, in seconds: the catalog's
 * `runTimeoutSeconds` (else DEFAULT_RUN_TIMEOUT_SECONDS), at most half the schedule's shortest gap,
 * so that a run stopped at its limit has ended (its grace period included) before the next tick,
 * which a run still going would make both runtimes skip (Forbid). A CronJob's
 * `activeDeadlineSeconds` and the Docker cron runner's `--timeout`.
 */
export function runTimeoutSeconds(schedule: string, configured: number = DEFAULT_RUN_TIMEOUT_SECONDS): number {
  if (!Number.isInteger(configured) || configured < 1) throw new Error(`a scheduled job's runTimeoutSeconds must be a positive whole number of seconds, got ${configured}`);
  return Math.min(configured, Math.floor(shortestGapSeconds(schedule) / 2));
}

/**
 * Added to a run's time limit before a run that recorded its start but no end is reported: the
 * grace period of the stop at the limit (a pod's 30 s, the cron runner's DEFAULT_KILL_GRACE_SECONDS), the
 * bookkeeping write, the runtime's own lateness in enforcing the limit, scrape and evaluation.
 */
export const RUN_UNFINISHED_MARGIN_SECONDS = 600;

/** Seconds after its recorded start at which a run with no recorded end can no longer be going. */
export function runUnfinishedAfterSeconds(runTimeout: number): number {
  return runTimeout + RUN_UNFINISHED_MARGIN_SECONDS;
}

/** Seconds without a success after which a job on `schedule` is overdue: OVERDUE_INTERVALS longest gaps plus OVERDUE_MARGIN_SECONDS. */
export function overdueAfterSeconds(schedule: string): number {
  return OVERDUE_INTERVALS * longestGapSeconds(schedule) + OVERDUE_MARGIN_SECONDS;
}

/** Whole hours when it is, else whole minutes, else seconds: Prometheus' duration syntax. */
function duration(seconds: number): string {
  if (seconds % 3_600 === 0) return `${seconds / 3_600}h`;
  return seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`;
}

const START = "scheduled_job_last_start_timestamp_seconds";
const SUCCESS = "scheduled_job_last_success_timestamp_seconds";
const FAILURE = "scheduled_job_last_failure_timestamp_seconds";

/**
 * The last run recorded a failure: its failure is newer than its last success, or it never
 * succeeded. Lasts until a run succeeds (a run that dies before it can record its end is
 * ScheduledJobRunUnfinished's business, one that never records its start the overdue alerts').
 */
export const scheduledJobFailing: AlertRule = {
  alert: "ScheduledJobFailing",
  // group_left: the result keeps the failure's `code` label (one series per job at a time).
  expr: `max by (scheduled_job, code) (${FAILURE}) > on (scheduled_job) group_left () (max by (scheduled_job) (${SUCCESS}) or max by (scheduled_job) (${FAILURE}) * 0)`,
  for: "0m",
  severity: "warning",
  summary: "scheduled job {{ $labels.scheduled_job }}: its last run failed ({{ $labels.code }}) and none succeeded since",
};

/** A deployed scheduled job: its name (scheduled_job label), its cron schedule and the time limit of a run (runTimeoutSeconds). */
export interface ScheduledJobAlertTarget {
  name: string;
  schedule: string;
  runTimeoutSeconds: number;
}

/**
 * Per job, the dead man's switch: no success for longer than its schedule allows
 * (ScheduledJobOverdue), or none ever recorded for that long (ScheduledJobNeverSucceeded: the
 * gauge is absent, e.g. a CronJob whose pods never start, a runner that never ran it); and a run
 * that recorded its start but neither a success nor a failure for longer than a run can last
 * (ScheduledJobRunUnfinished: killed by a signal, out of memory, its node lost or its time limit,
 * hours before it would be overdue).
 */
export function scheduledJobRules(jobs: readonly ScheduledJobAlertTarget[]): AlertRule[] {
  return [...jobs]
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((job) => {
      const limit = overdueAfterSeconds(job.schedule);
      const selector = `{scheduled_job=${JSON.stringify(job.name)}}`;
      const series = `${SUCCESS}${selector}`;
      const after = `${OVERDUE_INTERVALS} intervals of '${job.schedule}' + ${OVERDUE_MARGIN_SECONDS / 3_600}h`;
      const unfinished = runUnfinishedAfterSeconds(job.runTimeoutSeconds);
      const start = `max by (scheduled_job) (${START}${selector})`;
      // An end (success or failure) at or after the last start: that run finished. Either gauge may
      // be absent (no run of that outcome yet); both absent, no run ever finished and the start decides.
      const endedSince = (metric: string) => `(max by (scheduled_job) (${metric}${selector}) >= on (scheduled_job) ${start})`;
      return [
        {
          alert: "ScheduledJobOverdue",
          expr: `time() - max by (scheduled_job) (${series}) > ${limit}`,
          for: "5m",
          severity: "warning",
          summary: `scheduled job {{ $labels.scheduled_job }} has not succeeded for more than ${duration(limit)} (${after}): failing, not running, or dying before it can record its run`,
        },
        {
          alert: "ScheduledJobNeverSucceeded",
          expr: `absent(${series})`,
          for: duration(limit),
          severity: "warning",
          summary: `scheduled job {{ $labels.scheduled_job }} has no recorded success for ${duration(limit)} (${after}) of Prometheus watching: never run, never succeeded, or its service's /metrics unreadable`,
        },
        {
          alert: "ScheduledJobRunUnfinished",
          expr: `time() - ${start} > ${unfinished} unless on (scheduled_job) ${endedSince(SUCCESS)} unless on (scheduled_job) ${endedSince(FAILURE)}`,
          for: "0m",
          severity: "warning",
          summary: `scheduled job {{ $labels.scheduled_job }}: its last run started more than ${duration(unfinished)} ago (its ${duration(job.runTimeoutSeconds)} time limit + ${duration(RUN_UNFINISHED_MARGIN_SECONDS)}) and recorded neither a success nor a failure: killed (out of memory, a signal, its node lost, its time limit) or its end could not be written`,
        },
      ];
    });
}
