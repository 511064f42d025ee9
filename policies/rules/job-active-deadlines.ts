import * as docker from "@pulumi/docker";
import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { readingListItems } from "../lib/lists";
import { isRecord, isUnknown, plain, str } from "../lib/values";
import { tickGaps } from "../../stacks/cron-gaps";
import { describe, K8S } from "../lib/workloads";

export interface JobDeadlinesConfig {
    /** The longest time limit a Job (or a CronJob's run) or a Docker one-shot container's attachTimeout may have, in seconds. */
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

/** A run's time limit as a rule reads it: its value, the field as messages name it, and what a stuck run holds without it. */
interface Deadline { value: unknown; field: string; holds: string }

const K8S_HOLDS = "holds its pod, its connections and its credentials forever, and a CronJob under Forbid skips every later tick";
/** The provider waits for an attached container's exit inside the create, so `pulumi up` and the stack's lock wait with it. */
const DOCKER_HOLDS = "holds its container, its connections and its credentials, and `pulumi up` with the stack's lock (attach: the create waits for " +
    "its exit), forever";

/**
 * Where a run keeps its time limit: a Job's, a CronJob's job template's activeDeadlineSeconds; a Docker container run once and
 * waited for (`attach: true`: the program's migrations, components/runtime/docker.ts) its attachTimeout (this repo's provider,
 * tools/providers/docker: past it the run is stopped and removed and the create fails). A container not attached (or whose
 * attach is unknown during preview) is waited for by nothing, and is not a run here.
 */
function deadlineOf(type: string, props: Record<string, any>, isDockerContainer: boolean): Deadline | undefined {
    if (isDockerContainer) return props.attach === true ? { value: props.attachTimeout, field: "attachTimeout", holds: DOCKER_HOLDS } : undefined;
    const path = type === K8S.job ? ["spec", "activeDeadlineSeconds"] : type === K8S.cronJob ? ["spec", "jobTemplate", "spec", "activeDeadlineSeconds"] : undefined;
    return path && { value: valueAt(props, path), field: path.join("."), holds: K8S_HOLDS };
}

/** What is wrong with a run's time limit under `max` (nothing while it is unknown during preview, or the resource is no run). */
export function deadlineProblem(type: string, props: Record<string, any>, max: number, isDockerContainer = false): string | undefined {
    const d = deadlineOf(type, props, isDockerContainer);
    if (d === undefined || isUnknown(d.value)) return undefined;
    if (d.value === undefined || d.value === null) {
        return `has no ${d.field}: a run stuck (a lock never released, a peer that never answers, a hung write) ${d.holds}`;
    }
    if (typeof d.value !== "number" || !Number.isInteger(d.value) || d.value < 1) {
        return `has ${d.field} ${JSON.stringify(d.value)}, not a positive whole number of seconds`;
    }
    if (d.value > max) return `has ${d.field} ${d.value}, above ${max} seconds: a run going on that long is stuck, and a limit past it is none`;
    return undefined;
}

/** Go's durations as `@every` takes them (robfig/cron, the CronJob controller's parser): `1h30m`, `90s`, `1.5h`. */
function everySeconds(schedule: string): number | undefined {
    const m = /^@every\s+((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)$/.exec(schedule.trim());
    if (!m) return undefined;
    const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
    return [...m[1].matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)].reduce((sum, [, n, u]) => sum + Number(n) * unit[u], 0);
}

/** A daylight-saving change moves a zone's wall-clock ticks by up to an hour: a gap of a CronJob given a timeZone may be that much shorter. */
const DST_SHIFT_SECONDS = 3600;
const UTC_ZONES = new Set(["UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"]);

/**
 * The shortest time between two ticks of a CronJob's schedule, in seconds, as stacks/cron-gaps.ts samples it for the program
 * (croner; the syntax the API server accepts, `@hourly` and friends included; `@every <duration>` read here); undefined when
 * it cannot be read (the API server refuses what its parser cannot read) or fires at most once. Under a `timeZone` other
 * than UTC an hour shorter (not below an hour's ticks): a daylight-saving change moves the next tick closer by that much.
 */
export function shortestScheduleGap(schedule: string, timeZone?: string): number | undefined {
    const every = everySeconds(schedule);
    let shortest: number | undefined;
    if (every !== undefined) shortest = every;
    else {
        try {
            shortest = tickGaps(schedule.trim())?.shortest;
        } catch {
            return undefined;
        }
    }
    if (shortest === undefined || every !== undefined) return shortest;
    return timeZone !== undefined && !UTC_ZONES.has(timeZone) && shortest > DST_SHIFT_SECONDS ? shortest - DST_SHIFT_SECONDS : shortest;
}

/**
 * Session 65: a CronJob under concurrencyPolicy Allow (the default) starts each tick's run whether the last one has ended or
 * not, so a time limit at or past the schedule's shortest gap lets two runs go at once (two backups writing one file, two
 * retrainings one model, twice the connections), and each stuck run piles up beside the next until its limit. The program
 * checks this itself (components/monitoring/scheduled-jobs.ts: a run's limit at most half the shortest gap, under Forbid);
 * the pack did not. A limit equal to the gap overlaps too: the pod stopped at the tick runs its grace period beside the next.
 * Forbid (skip the tick) and Replace (stop the old run) never run two; a schedule, policy or limit unknown during preview
 * is judged at `up`.
 */
export function overlapProblem(props: Record<string, any>): string | undefined {
    const spec = props.spec;
    if (!isRecord(spec) || [spec.schedule, spec.concurrencyPolicy, spec.timeZone].some(isUnknown)) return undefined;
    const policy = str(spec.concurrencyPolicy) ?? "Allow";
    if (policy === "Forbid" || policy === "Replace") return undefined;
    const deadline = valueAt(props, ["spec", "jobTemplate", "spec", "activeDeadlineSeconds"]);
    const schedule = str(spec.schedule);
    if (typeof deadline !== "number" || !Number.isInteger(deadline) || deadline < 1 || schedule === undefined) return undefined;
    const gap = shortestScheduleGap(schedule, str(spec.timeZone));
    if (gap === undefined || deadline < gap) return undefined;
    const zone = spec.timeZone === undefined ? "" : ` in ${str(spec.timeZone)}, a daylight-saving change included`;
    return `has concurrencyPolicy ${policy}${spec.concurrencyPolicy === undefined ? " (unset: the default)" : ""} and a run's limit ` +
        `(spec.jobTemplate.spec.activeDeadlineSeconds ${deadline}) at or past its schedule's shortest gap ("${schedule}": ${gap} seconds${zone}): ` +
        "a run still going at the next tick runs beside the next one (two backups writing one file, twice the connections); set concurrencyPolicy: " +
        `Forbid (the platform's) or Replace, or a limit at most half the gap (${Math.floor(gap / 2)} seconds, as the program sets it).`;
}

/**
 * Session 64. A Job runs until it succeeds or its retries (backoffLimit) fail; a pod that neither ends nor fails (stuck on
 * a lock, a peer, a hung disk) runs forever, and a CronJob under concurrencyPolicy Forbid then skips every later run.
 * `activeDeadlineSeconds` on the Job (the CronJob's job template) stops the whole run, retries included. Session 64 (h6):
 * the Docker target's one-shot run (a container with `attach: true`, waited for by the create) is held alike, by its
 * `attachTimeout`, under the same bound: the program gives both ONE_SHOT_JOB_DEADLINE_SECONDS (components/workload.ts).
 */
export const jobActiveDeadlines: ResourceValidationPolicy = {
    name: "job-active-deadlines",
    description:
        "Every Job and every CronJob's job template sets activeDeadlineSeconds, and every Docker container run once and waited for " +
        "(attach) sets attachTimeout, at most maxActiveDeadlineSeconds (12 h by default): without it a stuck run holds its pod or " +
        "container and credentials forever, a CronJob under Forbid never runs again, and on Docker `pulumi up` never ends (session 64); " +
        "a CronJob under concurrencyPolicy Allow keeps that limit under its schedule's shortest gap, so two runs never go at once (session 65).",
    severity: "medium",
    configSchema: {
        properties: { maxActiveDeadlineSeconds: { type: "integer", minimum: 1, default: MAX_ACTIVE_DEADLINE_SECONDS } },
    },
    validateResource: readingListItems((args, reportViolation) => {
        // The Docker container by its SDK class, as every Docker rule recognises it (lib/rule.ts): the program registers the
        // token of @pulumi/docker's Container with this repo's provider's extra inputs (components/runtime/docker-container.ts).
        const isDockerContainer = args.isType(docker.Container);
        if (!isDockerContainer && args.type !== K8S.job && args.type !== K8S.cronJob) {
            return args.notApplicable("only Jobs, CronJobs and Docker containers");
        }
        const { maxActiveDeadlineSeconds } = readConfig(args, defaults);
        const props = plain(args.props);
        const overlap = args.type === K8S.cronJob ? overlapProblem(props) : undefined;
        if (overlap !== undefined) reportViolation(`${describe(args.type, args.name)} ${overlap}`);
        const problem = deadlineProblem(args.type, props, maxActiveDeadlineSeconds, isDockerContainer);
        if (problem === undefined) return;
        const platforms = isDockerContainer ? "the platform's migrations: 1 h" : "the platform's backups: 3 h";
        reportViolation(`${describe(args.type, args.name)} ${problem}; set it to the longest a run may take (${platforms}), ` +
            `at most ${maxActiveDeadlineSeconds} seconds.`);
    }),
};
