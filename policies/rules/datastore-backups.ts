import { StackValidationPolicy } from "@pulumi/policy";
import { Environment, environmentSchema, readConfig } from "../lib/config";
import { plainResources, StackResource } from "../lib/stack";
import { isUnknown, str } from "../lib/values";
import { LABEL_BACKUP_OF } from "../../catalog/labels";
import { DOCKER_CONTAINER, dockerLabels, identity, isK8sWorkload, K8S, metadataLabels, podTemplate } from "../lib/workloads";

export interface BackupConfig {
    environment: Environment;
    /** Datastores (trading.io/workload) that need a scheduled backup (the guide: pg_dump, clickhouse-backup). */
    requireBackupFor: string[];
}

const defaults: BackupConfig = { environment: "prod", requireBackupFor: ["postgres", "clickhouse"] };

/** Days in each month at most (February's 29: a schedule firing on Feb 29 alone runs once in four years). */
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The numbers of a cron field written as plain numbers (`30`, `30,31`), or undefined for anything else (`*`, ranges, steps, names). */
function plainNumbers(field: string | undefined): number[] | undefined {
    if (field === undefined || !/^[0-9]+(,[0-9]+)*$/.test(field)) return undefined;
    return field.split(",").map(Number);
}

/** Whether a five-field schedule names only days no month it names has (`0 2 30 2 *`, `0 2 31 4,6 *`): it never fires. */
export function neverFires(schedule: string): boolean {
    const fields = schedule.trim().split(/\s+/);
    if (fields.length !== 5 || fields[4] !== "*") return false; // a day of the week given fires on that weekday whatever the day of the month
    const days = plainNumbers(fields[2]);
    const months = plainNumbers(fields[3]);
    if (days === undefined || months === undefined) return false;
    return !months.some((m) => m >= 1 && m <= 12 && days.some((d) => d >= 1 && d <= MONTH_DAYS[m - 1]));
}

/**
 * Session 63b: what keeps a scheduled, unsuspended backup CronJob from producing backups. Its Jobs can be suspended or
 * given no pod (jobTemplate's suspend, parallelism 0), its runs skipped (a startingDeadlineSeconds under the controller's
 * 10-second sync: the documentation's "may not be scheduled"), its schedule impossible, and its runs overlap (Allow, the
 * default: a dump slower than the schedule starts another on the same datastore and target) or kill each other (Replace:
 * a dump slower than the schedule never completes). Values unknown during preview are judged at `up`.
 */
export function backupDefects(props: Record<string, any>): string[] {
    const spec = props.spec ?? {};
    const job = spec.jobTemplate?.spec ?? {};
    const out: string[] = [];
    if (job.suspend === true) out.push("its jobTemplate sets suspend: true (every Job it makes waits, running no pod)");
    if (job.parallelism === 0) out.push("its jobTemplate sets parallelism: 0 (every Job it makes runs no pod)");
    if (typeof spec.startingDeadlineSeconds === "number" && spec.startingDeadlineSeconds < 10) {
        out.push(`its startingDeadlineSeconds ${spec.startingDeadlineSeconds} is under the controller's 10-second check (a run may never start)`);
    }
    const schedule = str(spec.schedule);
    if (schedule !== undefined && neverFires(schedule)) out.push(`its schedule "${schedule}" names a day none of its months has (it never fires)`);
    const policy = spec.concurrencyPolicy;
    if (!isUnknown(policy) && str(policy) !== "Forbid") {
        out.push(str(policy) === "Replace"
            ? "a run slower than its schedule is killed by the next (concurrencyPolicy: Replace): a backup that never completes"
            : `its runs overlap (concurrencyPolicy: ${str(policy) ?? "unset, Allow"}): a dump slower than its schedule starts another on the same datastore and target`);
    }
    return out;
}

function backupTargets(r: StackResource): string[] {
    if (r.type === DOCKER_CONTAINER) {
        const v = dockerLabels(r.props)[LABEL_BACKUP_OF];
        return v ? [v] : [];
    }
    if (r.type !== K8S.cronJob) return [];
    if (r.props.spec?.suspend === true || !str(r.props.spec?.schedule)) return [];
    const labels = { ...(podTemplate(r.type, r.props)?.labels ?? {}), ...metadataLabels(r.props) };
    const v = labels[LABEL_BACKUP_OF];
    return v ? [v] : [];
}

/** Datastores present in the stack that no active, sound backup job covers, with what is wrong with the ones there are. */
export function missingBackups(resources: StackResource[], cfg: BackupConfig = defaults): Array<{ urn: string; datastore: string; defects: string[] }> {
    const defectsOf = new Map<string, string[]>();
    const covered = new Set<string>();
    for (const r of resources) {
        const defects = r.type === K8S.cronJob ? backupDefects(r.props).map((d) => `CronJob "${r.name}" ${d}`) : [];
        for (const target of backupTargets(r)) {
            if (defects.length === 0) covered.add(target);
            else defectsOf.set(target, [...(defectsOf.get(target) ?? []), ...defects]);
        }
    }
    const out: Array<{ urn: string; datastore: string; defects: string[] }> = [];
    const seen = new Set<string>();
    for (const r of resources) {
        if (r.type !== DOCKER_CONTAINER && !isK8sWorkload(r.type)) continue;
        if (r.type === K8S.cronJob || r.type === K8S.job) continue;
        const id = identity(r.type, r.name, r.props);
        if (!cfg.requireBackupFor.includes(id.workload) || covered.has(id.workload) || seen.has(id.workload)) continue;
        seen.add(id.workload);
        out.push({ urn: r.urn, datastore: id.workload, defects: defectsOf.get(id.workload) ?? [] });
    }
    return out;
}

export const datastoreBackups: StackValidationPolicy = {
    name: "datastore-backups",
    description:
        "On prod, PostgreSQL and ClickHouse (the systems of record) each have a scheduled, unsuspended backup " +
        `CronJob labelled ${LABEL_BACKUP_OF}=<datastore>, whose runs neither overlap nor replace each other (concurrencyPolicy: Forbid) ` +
        "and can run (a schedule that fires, no suspended or pod-less Jobs, no startingDeadlineSeconds under 10).",
    severity: "high",
    configSchema: {
        properties: {
            environment: environmentSchema,
            requireBackupFor: { type: "array", items: { type: "string" }, default: defaults.requireBackupFor },
        },
    },
    validateStack: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        if (cfg.environment !== "prod") args.notApplicable("prod-only policy (config environment != prod)");
        for (const m of missingBackups(plainResources(args.resources), cfg)) {
            reportViolation(m.defects.length > 0
                ? `Datastore "${m.datastore}" has no backup that runs sound: ${m.defects.join("; ")}. Set concurrencyPolicy: Forbid, a schedule that ` +
                  "fires, startingDeadlineSeconds unset or at least 10, and neither suspend nor parallelism: 0 in its jobTemplate."
                : `Datastore "${m.datastore}" has no backup: add a batch/v1 CronJob labelled ${LABEL_BACKUP_OF}=${m.datastore} ` +
                  "with a schedule (pg_dump / clickhouse-backup to a persistent volume or object store), not suspended.",
                m.urn,
            );
        }
    },
};
