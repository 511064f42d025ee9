import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { readingListItems } from "../lib/lists";
import { isRecord, isUnknown, plain } from "../lib/values";
import { describe, K8S } from "../lib/workloads";

export interface JobDeadlinesConfig {
    /** The longest time limit a Job (or a CronJob's run) may have, in seconds. */
    maxActiveDeadlineSeconds: number;
}

/**
 * Half a day. The platform's longest run is a backup's 3 h (BACKUP_RUN_TIMEOUT_SECONDS); a scheduled job's limit is at
 * most half its schedule's shortest gap (components/monitoring/scheduled-jobs.ts), 12 h for a daily one, so a run stopped
 * at it has ended before the next tick, which Forbid would otherwise skip. A run still going past that is stuck, not
 * slow: a limit beyond it (activeDeadlineSeconds takes up to 2^63 s) is none.
 */
export const MAX_ACTIVE_DEADLINE_SECONDS = 43_200;

const defaults: JobDeadlinesConfig = { maxActiveDeadlineSeconds: MAX_ACTIVE_DEADLINE_SECONDS };

/** The value at a path of a plain bag: UNKNOWN when it or a bag on the way is unknown during preview, undefined when absent. */
function valueAt(props: Record<string, any>, path: string[]): unknown {
    let at: unknown = props;
    for (const key of path) {
        if (isUnknown(at)) return at;
        at = isRecord(at) ? at[key] : undefined;
    }
    return at;
}

/** Where a Job or a CronJob's job template keeps its time limit, and the field as messages name it. */
function deadlineOf(type: string, props: Record<string, any>): { value: unknown; field: string } | undefined {
    const path = type === K8S.job ? ["spec", "activeDeadlineSeconds"] : type === K8S.cronJob ? ["spec", "jobTemplate", "spec", "activeDeadlineSeconds"] : undefined;
    return path && { value: valueAt(props, path), field: path.join(".") };
}

/** What is wrong with a Job's or a CronJob's time limit under `max` (nothing while it is unknown during preview). */
export function deadlineProblem(type: string, props: Record<string, any>, max: number): string | undefined {
    const d = deadlineOf(type, props);
    if (d === undefined || isUnknown(d.value)) return undefined;
    if (d.value === undefined || d.value === null) {
        return `has no ${d.field}: a run stuck (a lock never released, a peer that never answers, a hung write) holds its pod, its ` +
            "connections and its credentials forever, and a CronJob under Forbid skips every later tick";
    }
    if (typeof d.value !== "number" || !Number.isInteger(d.value) || d.value < 1) {
        return `has ${d.field} ${JSON.stringify(d.value)}, not a positive whole number of seconds`;
    }
    if (d.value > max) return `has ${d.field} ${d.value}, above ${max} seconds: a run going on that long is stuck, and a limit past it is none`;
    return undefined;
}

/**
 * Session 64. A Job runs until it succeeds or its retries (backoffLimit) fail; a pod that neither ends nor fails (stuck on
 * a lock, a peer, a hung disk) runs forever, and a CronJob under concurrencyPolicy Forbid then skips every later run.
 * `activeDeadlineSeconds` on the Job (the CronJob's job template) stops the whole run, retries included.
 */
export const jobActiveDeadlines: ResourceValidationPolicy = {
    name: "job-active-deadlines",
    description:
        "Every Job and every CronJob's job template sets activeDeadlineSeconds, at most maxActiveDeadlineSeconds (12 h by default): " +
        "without it a stuck run holds its pod and credentials forever and a CronJob under Forbid never runs again (session 64).",
    severity: "medium",
    configSchema: {
        properties: { maxActiveDeadlineSeconds: { type: "integer", minimum: 1, default: MAX_ACTIVE_DEADLINE_SECONDS } },
    },
    validateResource: readingListItems((args, reportViolation) => {
        if (args.type !== K8S.job && args.type !== K8S.cronJob) return args.notApplicable("only Jobs and CronJobs");
        const { maxActiveDeadlineSeconds } = readConfig(args, defaults);
        const problem = deadlineProblem(args.type, plain(args.props), maxActiveDeadlineSeconds);
        if (problem === undefined) return;
        reportViolation(`${describe(args.type, args.name)} ${problem}; set it to the longest a run may take (the platform's backups: 3 h), ` +
            `at most ${maxActiveDeadlineSeconds} seconds.`);
    }),
};
