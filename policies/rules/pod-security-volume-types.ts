import { ResourceValidationPolicy } from "@pulumi/policy";
import { readConfig } from "../lib/config";
import { PSS_CONTROLS, RESTRICTED_VOLUME_TYPES } from "../lib/pss";
import { forEveryWorkload, Workload } from "../lib/rule";
import { arr, isRecord, str } from "../lib/values";

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

export const podSecurityVolumeTypes: ResourceValidationPolicy = {
    name: "pod-security-volume-types",
    description:
        "Pod Security Standards restricted, volume types: pods use only configMap, csi, downwardAPI, emptyDir, " +
        "ephemeral, persistentVolumeClaim, projected and secret volumes (no hostPath, NFS, iSCSI, cloud disks, gitRepo, ...).",
    severity: "high",
    configSchema: {
        properties: { allowedVolumeTypes: { type: "array", items: { type: "string" }, default: [] } },
    },
    validateResource: forEveryWorkload((w, args, reportViolation) => {
        for (const [name, type] of restrictedVolumes(w, readConfig(args, defaults))) {
            reportViolation(
                `${w.label} volume "${name}" is of type ${type} (PSS restricted "${PSS_CONTROLS.volumeTypes}"); use a ` +
                "PersistentVolumeClaim (storage through a StorageClass), emptyDir, configMap, secret or projected volume instead.",
            );
        }
    }, ["kubernetes"]),
};
