import { StackValidationPolicy } from "@pulumi/policy";
import { LABEL_WORKLOAD } from "../../catalog/labels";
import { stackWorkloads, Workload } from "../lib/rule";
import { plainResources, StackResource } from "../lib/stack";
import { arr, isRecord, isUnknown, str } from "../lib/values";
import { DOCKER_VOLUME, dockerLabels, identity, K8S, metadataLabels, namespaceOf, objectName } from "../lib/workloads";

const PERSISTENT_VOLUME_CLAIM = "kubernetes:core/v1:PersistentVolumeClaim";

/**
 * Session 62. Each workload of the platform keeps its data on storage of its own: a StatefulSet's claims
 * (`<template>-<statefulset>-<ordinal>`, made from its `volumeClaimTemplates`), another kind's
 * PersistentVolumeClaim and a Docker volume, each labelled with its `trading.io/workload`
 * (components/runtime/kubernetes/storage.ts, components/runtime/docker.ts). Nothing judged whose storage a
 * workload mounts, so a service (or a Job) naming `data-postgres-0` as a claim, or the Docker volume
 * `ai-trading-dev-postgres-data`, held the database's files (every table, password hashes and the WAL)
 * read and write, past the database's own authentication, the network policies and `workload-secret-scope`.
 * (session 49 refused a claim *populated* from another volume; this is the volume itself.) A claim or volume
 * the stack declares for another workload is refused wherever a workload mounts it; a name unknown during
 * preview is judged at `up`, and storage the stack does not declare (or declares without the label) is not
 * judged: a fresh claim holds nothing of anyone's, and one bound to an existing volume is
 * `allowed-storage-drivers`' (`volumeName`).
 */

interface Owned { owner: string; what: string }

/** Whose a declared claim is, by its namespace and name: a PVC's label, a StatefulSet's claims by its templates. */
function claimOwner(resources: StackResource[], namespace: string, claim: string): Owned | undefined {
    for (const r of resources) {
        if (namespaceOf(r.props) !== namespace) continue;
        if (r.type === PERSISTENT_VOLUME_CLAIM && objectName(r.props, r.name) === claim) {
            const owner = metadataLabels(r.props)[LABEL_WORKLOAD]?.trim();
            if (owner) return { owner, what: `PersistentVolumeClaim "${claim}"` };
        }
        if (r.type !== K8S.statefulSet) continue;
        const set = objectName(r.props, r.name);
        // As its own pods are named (lib/workloads.ts identity: the pod template's label, else the resource's name).
        const owner = identity(r.type, r.name, r.props).workload;
        for (const t of arr(r.props.spec?.volumeClaimTemplates)) {
            const template = isRecord(t) ? str(t.metadata?.name) : undefined;
            // The controller names a replica's claim `<template>-<statefulset>-<ordinal>`.
            const prefix = template === undefined ? undefined : `${template}-${set}-`;
            const ordinal = prefix !== undefined && claim.startsWith(prefix) ? claim.slice(prefix.length) : "";
            if (/^\d+$/.test(ordinal)) return { owner, what: `claim "${claim}" (StatefulSet "${set}" volumeClaimTemplates ${template}, replica ${ordinal})` };
        }
    }
    return undefined;
}

/** Whose a declared Docker volume is, by its engine name (its `trading.io/workload` label). */
function dockerVolumeOwner(resources: StackResource[], name: string): Owned | undefined {
    for (const r of resources) {
        if (r.type !== DOCKER_VOLUME || str(r.props.name) !== name) continue;
        const owner = dockerLabels(r.props)[LABEL_WORKLOAD]?.trim();
        if (owner) return { owner, what: `volume "${name}"` };
    }
    return undefined;
}

/** The storage a workload mounts, by the field that mounts it and the owner the stack declares for it. */
export function mountedStorage(w: Workload, resources: StackResource[]): Array<Owned & { field: string }> {
    const out: Array<Owned & { field: string }> = [];
    if (w.target === "docker") {
        arr(w.props.volumes).forEach((v, i) => {
            const name = isRecord(v) && !isUnknown(v.volumeName) ? str(v.volumeName) : undefined;
            const owned = name === undefined ? undefined : dockerVolumeOwner(resources, name);
            if (owned) out.push({ ...owned, field: `volumes[${i}].volumeName` });
        });
        arr(w.props.mounts).forEach((m, i) => {
            const name = isRecord(m) && str(m.type) === "volume" ? str(m.source) : undefined;
            const owned = name === undefined ? undefined : dockerVolumeOwner(resources, name);
            if (owned) out.push({ ...owned, field: `mounts[${i}].source` });
        });
        return out;
    }
    const ns = namespaceOf(w.props);
    arr(w.pod?.spec.volumes).forEach((v, i) => {
        const claim = isRecord(v) ? str(v.persistentVolumeClaim?.claimName) : undefined;
        const owned = claim === undefined ? undefined : claimOwner(resources, ns, claim);
        if (owned) out.push({ ...owned, field: `volume "${str(v.name) ?? i}" (persistentVolumeClaim)` });
    });
    return out;
}

/** Each mount of storage the stack declares for another workload. */
export function foreignVolumeMounts(workloads: Array<{ workload: Workload; urn: string }>, resources: StackResource[]): Array<{ urn: string; message: string }> {
    const out: Array<{ urn: string; message: string }> = [];
    for (const { workload: w, urn } of workloads) {
        for (const m of mountedStorage(w, resources)) {
            if (m.owner === w.id.workload) continue;
            out.push({
                urn,
                message: `${w.label} (${LABEL_WORKLOAD} ${w.id.workload}) mounts ${m.what} of workload ${m.owner} (${m.field}), so its containers ` +
                    `read and write ${m.owner}'s files directly, past ${m.owner}'s own authentication and the network policies, and whoever takes ` +
                    `them over does too. Reach ${m.owner} through its Service with credentials of its own, and give the workload storage of its own ` +
                    "(a claim template or PersistentVolumeClaim, a Docker volume, labelled with its workload).",
            });
        }
    }
    return out;
}

export const workloadVolumeScope: StackValidationPolicy = {
    name: "workload-volume-scope",
    description:
        "No workload mounts storage the stack declares for another workload (its trading.io/workload label): not a StatefulSet's claim " +
        "(<template>-<statefulset>-<ordinal>), a PersistentVolumeClaim, nor a Docker volume (volumes[].volumeName, mounts[].source) (session 62).",
    severity: "high",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        const workloads = stackWorkloads(resources);
        if (workloads.length === 0) args.notApplicable("no workloads");
        for (const f of foreignVolumeMounts(workloads, resources)) reportViolation(f.message, f.urn);
    },
};
