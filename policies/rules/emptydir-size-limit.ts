import { ResourceValidationPolicy } from "@pulumi/policy";
import { Environment, environmentSchema } from "../lib/config";
import { Workload, workloadRule } from "../lib/rule";
import { arr, isRecord, isUnknown, positiveQuantity, str } from "../lib/values";

export interface EmptyDirSizeLimitConfig {
    environment: Environment;
}

const defaults: EmptyDirSizeLimitConfig = { environment: "prod" };

/**
 * Every emptyDir volume of a Kubernetes pod has a positive `sizeLimit` (zero in any spelling is none: the
 * kubelet only evicts a pod for an emptyDir over a positive limit; unknown during preview is taken as set). Without one a disk-backed
 * emptyDir grows on the node's root (ephemeral) storage until the node runs out and the kubelet
 * evicts pods at random, and a memory-backed one (`medium: Memory`) grows up to the node's memory.
 */
export function unboundedEmptyDirs(w: Workload, cfg: EmptyDirSizeLimitConfig = defaults): string[] {
    if (cfg.environment !== "prod" || w.target !== "kubernetes" || !w.pod) return [];
    const out: string[] = [];
    for (const v of arr(w.pod.spec.volumes)) {
        if (!isRecord(v) || v.emptyDir === undefined || v.emptyDir === null) continue;
        const dir = v.emptyDir;
        if (isUnknown(dir) || (isRecord(dir) && positiveQuantity(dir.sizeLimit))) continue;
        const memory = isRecord(dir) && str(dir.medium) === "Memory";
        out.push(`emptyDir volume "${str(v.name) ?? "<unnamed>"}"${memory ? " (medium: Memory)" : ""} has no sizeLimit`);
    }
    return out;
}

export const emptyDirSizeLimit: ResourceValidationPolicy = {
    name: "emptydir-size-limit",
    description:
        "On prod, every Kubernetes emptyDir volume has a sizeLimit, so one pod writing without end cannot fill the " +
        "node's disk (or memory, for medium: Memory) and get every other pod on it evicted.",
    severity: "medium",
    configSchema: { properties: { environment: environmentSchema } },
    validateResource: workloadRule(defaults, unboundedEmptyDirs, (w, p) =>
        `${w.label} ${p}: it can fill the node's ${p.includes("medium: Memory") ? "memory" : "disk"} and get the node's other pods evicted. ` +
        "Set emptyDir.sizeLimit to what the directory needs (the kubelet evicts this pod alone when it outgrows it).",
        ["kubernetes"]),
};
