import * as k8s from "@pulumi/kubernetes";
import { ResourceValidationPolicy, validateResourceOfType } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { PSS_CONTROLS, RESTRICTED_VOLUME_TYPES } from "../lib/pss";
import { forEveryWorkload, Workload } from "../lib/rule";
import { arr, isRecord, plain, str } from "../lib/values";
import { describe } from "../lib/workloads";
import { readingListItems } from "../lib/lists";

export interface VolumeTypesConfig {
    /** Volume sources allowed besides the PSS restricted set. */
    allowedVolumeTypes: string[];
}

const defaults: VolumeTypesConfig = { allowedVolumeTypes: [] };

/** PSS restricted "Volume types": [volume name, its source type] for every volume outside the allowed set. */
export function restrictedVolumes(w: Workload, cfg: VolumeTypesConfig = defaults): Array<[string, string]> {
    if (w.target !== "kubernetes" || !w.pod) return [];
    const allowed = new Set([...RESTRICTED_VOLUME_TYPES, ...cfg.allowedVolumeTypes]);
    const out: Array<[string, string]> = [];
    for (const v of arr(w.pod.spec.volumes)) {
        if (!isRecord(v)) continue;
        const name = str(v.name) ?? "<unnamed>";
        for (const [key, value] of Object.entries(v)) {
            if (key === "name" || value === undefined || value === null) continue;
            if (!allowed.has(key)) out.push([name, key]);
        }
    }
    return out;
}

/** A PersistentVolume's spec fields that are not its source. */
const PV_FIELDS = new Set([
    "accessModes", "capacity", "claimRef", "mountOptions", "nodeAffinity", "persistentVolumeReclaimPolicy", "storageClassName", "volumeMode", "volumeAttributesClassName",
]);

/**
 * Session 48: the source of a PersistentVolume the program declares, when it is a type PSS restricted
 * refuses inline (nfs, iscsi, flexVolume, which runs a driver binary on the node as root, cephfs, ...):
 * a pod claiming it by a PersistentVolumeClaim mounts it past the check above. `hostPath` and `local`
 * are no-privileged-containers' (a node's directory); `csi` and the allowed types pass.
 */
export function restrictedPersistentVolumeSources(props: Record<string, any>, cfg: VolumeTypesConfig = defaults): string[] {
    const spec = props.spec;
    if (!isRecord(spec)) return [];
    const allowed = new Set([...RESTRICTED_VOLUME_TYPES, ...cfg.allowedVolumeTypes, "hostPath", "local"]);
    return Object.entries(spec).filter(([k, v]) => !PV_FIELDS.has(k) && !allowed.has(k) && v !== undefined && v !== null).map(([k]) => k);
}

export const podSecurityVolumeTypes: ResourceValidationPolicy = {
    name: "pod-security-volume-types",
    description:
        "Pod Security Standards restricted, volume types: pods use only configMap, csi, downwardAPI, emptyDir, " +
        "ephemeral, persistentVolumeClaim, projected and secret volumes (no hostPath, NFS, iSCSI, cloud disks, gitRepo, ...), and the program " +
        "declares no PersistentVolume of a type they refuse (a pod would claim it past the check).",
    severity: "high",
    configSchema: {
        properties: { allowedVolumeTypes: { type: "array", items: { type: "string" }, default: [] } },
    },
    // Session 53: a *List's items are the objects the API server applies, each judged as declared alone (lib/lists.ts).
    validateResource: readingListItems([
        forEveryWorkload((w, args, reportViolation) => {
            for (const [name, type] of restrictedVolumes(w, readConfig(args, defaults))) {
                reportViolation(
                    `${w.label} volume "${name}" is of type ${type} (PSS restricted "${PSS_CONTROLS.volumeTypes}"); use a ` +
                    "PersistentVolumeClaim (storage through a StorageClass), emptyDir, configMap, secret or projected volume instead.",
                );
            }
        }, ["kubernetes"]),
        validateResourceOfType(k8s.core.v1.PersistentVolume, (props, args, reportViolation) => {
            for (const type of restrictedPersistentVolumeSources(plain(props as Record<string, any>), readConfig(args, defaults))) {
                reportViolation(`${describe(args.type, args.name)} is of type ${type}, which PSS restricted refuses as a pod's volume ` +
                    `("${PSS_CONTROLS.volumeTypes}"): a pod claiming it mounts it past that check; provision storage through a StorageClass ` +
                    "(a CSI driver), or list the type in allowedVolumeTypes after review.");
            }
        }),
    ]),
};
