import { ResourceValidationPolicy } from "@pulumi/policy";
import { Environment, environmentSchema } from "../lib/config";
import { Workload, workloadRule } from "../lib/rule";
import { arr, hasUnknown, isRecord, str } from "../lib/values";
import { isDatastore, isDockerOneShot, K8S } from "../lib/workloads";

export interface PersistentStorageConfig {
    environment: Environment;
}

const defaults: PersistentStorageConfig = { environment: "prod" };

/** Kubernetes: names of the volumes backed by a PersistentVolumeClaim (claim templates and claim volumes). */
function claimVolumes(w: Workload): Set<string> {
    const names = arr(w.props.spec?.volumeClaimTemplates).map((t) => str(t?.metadata?.name));
    for (const v of arr(w.pod?.spec.volumes)) if (isRecord(v) && isRecord(v.persistentVolumeClaim)) names.push(str(v.name));
    return new Set(names.filter((n): n is string => n !== undefined));
}

/**
 * A datastore whose data outlives its container or pod: on Docker a named volume (bind mounts are
 * no-privileged-containers' concern), on Kubernetes a PersistentVolumeClaim one of its containers
 * mounts (a claim template nobody mounts, an emptyDir or the container's own layer are lost with
 * the pod). Backups (datastore-backups) are the second line, not the first. One-shot containers,
 * Jobs and CronJobs are not datastores' homes; mounts unknown during preview are skipped.
 */
export function ephemeralDatastore(w: Workload, cfg: PersistentStorageConfig = defaults): string[] {
    if (cfg.environment !== "prod" || !isDatastore(w.id)) return [];
    if (w.target === "docker") {
        if (isDockerOneShot(w.props, w.id) || hasUnknown(w.props.volumes) || hasUnknown(w.props.mounts)) return [];
        const named = arr(w.props.volumes).some((v) => isRecord(v) && str(v.volumeName) !== undefined)
            || arr(w.props.mounts).some((m) => isRecord(m) && str(m.type) === "volume" && str(m.source) !== undefined);
        return named ? [] : ["is a datastore with no named volume: its data is lost whenever the container is replaced; mount a Docker volume (volumes[].volumeName) at its data directory"];
    }
    if (w.type === K8S.job || w.type === K8S.cronJob || w.pod === undefined) return [];
    if (hasUnknown(w.props.spec?.volumeClaimTemplates) || hasUnknown(w.pod.spec.volumes) || w.containers.some((c) => hasUnknown(c.container.volumeMounts))) return [];
    const claims = claimVolumes(w);
    const mounted = w.containers.some((c) => arr(c.container.volumeMounts).some((m) => isRecord(m) && claims.has(str(m.name) ?? "")));
    return [...(mounted ? [] : [
        "is a datastore whose containers mount no PersistentVolumeClaim: its data is lost whenever the pod is rescheduled or replaced; " +
            "mount a PersistentVolumeClaim (volumeClaimTemplates) at its data directory",
    ]), ...claimRetentionProblems(w)];
}

/**
 * Session 63: a StatefulSet's claims outlive it unless its persistentVolumeClaimRetentionPolicy says Delete. whenDeleted:
 * Delete deletes every claim (and, under a reclaimPolicy Delete class, the disk) with the StatefulSet, which Pulumi deletes
 * and makes anew whenever an immutable field changes (its volumeClaimTemplates, selector or serviceName): the database's
 * data gone on an ordinary update. whenScaled: Delete deletes a replica's data when the set is scaled below it.
 */
function claimRetentionProblems(w: Workload): string[] {
    const policy = w.type === K8S.statefulSet ? w.props.spec?.persistentVolumeClaimRetentionPolicy : undefined;
    if (!isRecord(policy)) return [];
    const out: string[] = [];
    if (str(policy.whenDeleted) === "Delete") {
        out.push("is a datastore whose claims are deleted with the StatefulSet (persistentVolumeClaimRetentionPolicy.whenDeleted: Delete), which Pulumi deletes " +
            "and makes anew whenever an immutable field changes (volumeClaimTemplates, selector, serviceName): its data gone on an update; set whenDeleted: Retain");
    }
    if (str(policy.whenScaled) === "Delete") {
        out.push("is a datastore whose claims are deleted when it is scaled down (persistentVolumeClaimRetentionPolicy.whenScaled: Delete): the removed " +
            "replicas' data gone; set whenScaled: Retain");
    }
    return out;
}

export const datastorePersistentStorage: ResourceValidationPolicy = {
    name: "datastore-persistent-storage",
    description:
        "On prod, every datastore keeps its data on storage that outlives the container: a named Docker volume, or a " +
        "PersistentVolumeClaim a container of the pod mounts, which a StatefulSet's persistentVolumeClaimRetentionPolicy does not delete " +
        "with it or on a scale-down (session 63).",
    severity: "high",
    configSchema: { properties: { environment: environmentSchema } },
    validateResource: workloadRule(defaults, ephemeralDatastore, (w, p) => `${w.label} ${p}.`),
};
