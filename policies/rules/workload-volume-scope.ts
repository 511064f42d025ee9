import { StackValidationPolicy } from "@pulumi/policy";
import { LABEL_WORKLOAD } from "../../catalog/labels";
import { stackWorkloads, Workload } from "../lib/rule";
import { plainResources, StackResource } from "../lib/stack";
import { arr, isRecord, isUnknown, str } from "../lib/values";
import { DOCKER_CONTAINER, DOCKER_VOLUME, dockerLabels, identity, K8S, metadataLabels, namespaceOf, objectName } from "../lib/workloads";

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
 * preview is judged at `up`, and storage the stack declares without the label is not judged: a fresh claim
 * holds nothing of anyone's, and one bound to an existing volume is `allowed-storage-drivers`' (`volumeName`).
 * Storage the stack does not declare at all is refused since session 63 (`undeclaredStorage`).
 */

interface Owned { owner: string; what: string }

/**
 * The claim of this name the stack makes in this namespace, and whose it is (undefined when unlabelled): a PVC's label,
 * a StatefulSet's claims by its templates; undefined when the stack makes none.
 */
function declaredClaim(resources: StackResource[], namespace: string, claim: string): { owner: string | undefined; what: string } | undefined {
    for (const r of resources) {
        if (namespaceOf(r.props) !== namespace) continue;
        if (r.type === PERSISTENT_VOLUME_CLAIM && objectName(r.props, r.name) === claim) {
            return { owner: metadataLabels(r.props)[LABEL_WORKLOAD]?.trim() || undefined, what: `PersistentVolumeClaim "${claim}"` };
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
        const declared = claim === undefined ? undefined : declaredClaim(resources, ns, claim);
        if (declared?.owner) out.push({ owner: declared.owner, what: declared.what, field: `volume "${str(v.name) ?? i}" (persistentVolumeClaim)` });
    });
    return out;
}

/**
 * Session 63: storage a workload mounts by a name the stack declares nowhere: a Docker volume (`volumes[].volumeName`, a
 * `mounts[]` source of type volume) no `docker.Volume` of the stack is named, a pod's `persistentVolumeClaim.claimName` no
 * PersistentVolumeClaim nor StatefulSet claim template of its namespace makes, and a Docker `volumes[].fromContainer` naming
 * a container the stack does not declare for the same workload (it mounts every volume of that container). The engine hands
 * a named volume whatever a container left in one of that name on the host (`pg-data`, another stack's database files, beside
 * the declared `trading-pg-data`), and a claim of that name is whoever made it: neither is judged by ownership at all. Names
 * unknown during preview (the mount's, or any declared volume's or claim's) are judged at `up`.
 */
export function undeclaredStorage(w: Workload, resources: StackResource[]): string[] {
    const out: string[] = [];
    if (w.target === "docker") {
        const volumes = resources.filter((r) => r.type === DOCKER_VOLUME);
        if (volumes.some((r) => isUnknown(r.props.name))) return [];
        const declared = new Set(volumes.map((r) => str(r.props.name)).filter((n): n is string => n !== undefined));
        const judge = (name: string | undefined, field: string) => {
            if (name === undefined || declared.has(name)) return;
            out.push(`mounts volume "${name}" (${field}), which the stack does not declare: the engine hands it whatever a container left in a volume ` +
                "of that name on the host (another stack's or workload's files), or makes one empty and unlabelled");
        };
        arr(w.props.volumes).forEach((v, i) => {
            if (!isRecord(v)) return;
            judge(isUnknown(v.volumeName) ? undefined : str(v.volumeName), `volumes[${i}].volumeName`);
            const from = isUnknown(v.fromContainer) ? undefined : str(v.fromContainer);
            if (from === undefined) return;
            // `<container>[:ro|:rw]`, as the engine reads volumes-from; a container whose name is unknown during preview may be it.
            if (resources.some((r) => r.type === DOCKER_CONTAINER && isUnknown(r.props.name))) return;
            const source = resources.find((r) => r.type === DOCKER_CONTAINER && str(r.props.name) === from.replace(/:(ro|rw)$/, ""));
            const owner = source === undefined ? undefined : dockerLabels(source.props)[LABEL_WORKLOAD]?.trim();
            if (owner === w.id.workload) return;
            out.push(`mounts every volume of container "${from}" (volumes[${i}].fromContainer), ` + (owner === undefined
                ? "which the stack does not declare: whatever volumes that container has, whoever runs it"
                : `of workload ${owner}: ${owner}'s files, read and written past its own authentication`));
        });
        arr(w.props.mounts).forEach((m, i) => {
            if (isRecord(m) && str(m.type) === "volume" && !isUnknown(m.source)) judge(str(m.source), `mounts[${i}].source`);
        });
        return out;
    }
    const ns = namespaceOf(w.props);
    const claims = resources.filter((r) => r.type === PERSISTENT_VOLUME_CLAIM || r.type === K8S.statefulSet);
    if (claims.some((r) => isUnknown(r.props.metadata?.name))) return [];
    arr(w.pod?.spec.volumes).forEach((v, i) => {
        if (!isRecord(v) || !isRecord(v.persistentVolumeClaim) || isUnknown(v.persistentVolumeClaim.claimName)) return;
        const claim = str(v.persistentVolumeClaim.claimName);
        if (claim === undefined || declaredClaim(resources, ns, claim) !== undefined) return;
        // Kubernetes makes no claim on a pod's behalf: one of that name exists only if someone else made it.
        out.push(`mounts the PersistentVolumeClaim "${claim}" (volume "${str(v.name) ?? i}"), which the stack does not declare in its namespace: ` +
            "the pod starts only on a claim someone else made, holding whatever they put there");
    });
    return out;
}

/** Each mount of storage the stack declares for another workload, or does not declare. */
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
        for (const p of undeclaredStorage(w, resources)) {
            out.push({
                urn,
                message: `${w.label} (${LABEL_WORKLOAD} ${w.id.workload}) ${p}. Declare the workload's storage in the program, labelled with the workload ` +
                    `(a ${w.target === "docker" ? "docker.Volume" : "PersistentVolumeClaim or claim template"}), and mount that by its name.`,
            });
        }
    }
    return out;
}

export const workloadVolumeScope: StackValidationPolicy = {
    name: "workload-volume-scope",
    description:
        "No workload mounts storage the stack declares for another workload (its trading.io/workload label): not a StatefulSet's claim " +
        "(<template>-<statefulset>-<ordinal>), a PersistentVolumeClaim, nor a Docker volume (volumes[].volumeName, mounts[].source) (session 62); " +
        "nor storage the stack does not declare: a Docker volume no docker.Volume is named, another workload's or an undeclared container's " +
        "volumes (volumes[].fromContainer), a claim no PersistentVolumeClaim or claim template of its namespace makes (session 63).",
    severity: "high",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        const workloads = stackWorkloads(resources);
        if (workloads.length === 0) args.notApplicable("no workloads");
        for (const f of foreignVolumeMounts(workloads, resources)) reportViolation(f.message, f.urn);
    },
};
