import { StackValidationPolicy } from "@pulumi/policy";
import { Environment, environmentSchema, readConfig } from "../lib/config";
import { plainResources, StackResource } from "../lib/stack";
import { str } from "../lib/values";
import { LABEL_BACKUP_OF } from "../../catalog/labels";
import { DOCKER_CONTAINER, dockerLabels, identity, isK8sWorkload, K8S, metadataLabels, podTemplate } from "../lib/workloads";

export interface BackupConfig {
    environment: Environment;
    /** Datastores (trading.io/workload) that need a scheduled backup (the guide: pg_dump, clickhouse-backup). */
    requireBackupFor: string[];
}

const defaults: BackupConfig = { environment: "prod", requireBackupFor: ["postgres", "clickhouse"] };

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

/** Datastores present in the stack that no active backup job covers. */
export function missingBackups(resources: StackResource[], cfg: BackupConfig = defaults): Array<{ urn: string; datastore: string }> {
    const covered = new Set(resources.flatMap(backupTargets));
    const out: Array<{ urn: string; datastore: string }> = [];
    const seen = new Set<string>();
    for (const r of resources) {
        if (r.type !== DOCKER_CONTAINER && !isK8sWorkload(r.type)) continue;
        if (r.type === K8S.cronJob || r.type === K8S.job) continue;
        const id = identity(r.type, r.name, r.props);
        if (!cfg.requireBackupFor.includes(id.workload) || covered.has(id.workload) || seen.has(id.workload)) continue;
        seen.add(id.workload);
        out.push({ urn: r.urn, datastore: id.workload });
    }
    return out;
}

export const datastoreBackups: StackValidationPolicy = {
    name: "datastore-backups",
    description:
        "On prod, PostgreSQL and ClickHouse (the systems of record) each have a scheduled, unsuspended backup " +
        `CronJob labelled ${LABEL_BACKUP_OF}=<datastore>.`,
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
            reportViolation(
                `Datastore "${m.datastore}" has no backup: add a batch/v1 CronJob labelled ${LABEL_BACKUP_OF}=${m.datastore} ` +
                "with a schedule (pg_dump / clickhouse-backup to a persistent volume or object store), not suspended.",
                m.urn,
            );
        }
    },
};
