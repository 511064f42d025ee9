import { ResourceValidationPolicy } from "@pulumi/policy";
import { Workload, workloadRule } from "../lib/rule";
import { arr, isRecord, isUnknown, str } from "../lib/values";

/** The taints kubeadm (and most distributions) put on control-plane nodes: current and pre-1.24 names. */
export const CONTROL_PLANE_TAINTS: readonly string[] = ["node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"];

/**
 * What lets a pod of the platform run on a control-plane node, next to etcd, the API server and their
 * keys, where one container escape is the whole cluster's: a toleration of the control-plane taint, a
 * toleration without a key (`operator: Exists` with no key tolerates every taint, that one included,
 * and `NoExecute` evictions too), or `spec.nodeName`, which hands the pod to a node's kubelet past the
 * scheduler and so past every `NoSchedule` taint. No workload of the platform sets any of them (system
 * DaemonSets that must run everywhere are not the platform's, and are not deployed by this program).
 */
export interface PlacementConfig {
    /** Schedulers reviewed to honour the control-plane taints (their names as pods give them in spec.schedulerName). */
    allowedSchedulers: string[];
}

const defaults: PlacementConfig = { allowedSchedulers: [] };

export function controlPlanePlacement(w: Workload, cfg: PlacementConfig = defaults): string[] {
    if (!w.pod) return [];
    const spec = w.pod.spec;
    const out: string[] = [];
    arr(spec.tolerations).forEach((t, i) => {
        if (!isRecord(t) || isUnknown(t.key) || isUnknown(t.operator)) return;
        const key = str(t.key) ?? "";
        const effect = str(t.effect);
        if (key === "") {
            out.push(`tolerations[${i}] has no key (operator ${str(t.operator) ?? "Exists"}${effect ? `, effect ${effect}` : ""}), which tolerates every taint${effect ? ` of that effect` : ""}, the control plane's included`);
        } else if (CONTROL_PLANE_TAINTS.includes(key)) {
            out.push(`tolerations[${i}] tolerates the control-plane taint ${key}`);
        }
    });
    const nodeName = str(spec.nodeName);
    if (nodeName) out.push(`sets nodeName "${nodeName}", which runs the pod on that node past the scheduler and every NoSchedule taint`);
    // Session 62: the taints bind only the scheduler that reads them. Another one (a pod's schedulerName) binds the pod
    // wherever it decides, a control-plane node included, and the pack cannot read what it honours.
    const scheduler = str(spec.schedulerName)?.trim();
    if (scheduler && scheduler !== "default-scheduler" && !cfg.allowedSchedulers.includes(scheduler)) {
        out.push(`sets schedulerName "${scheduler}", which places the pod by rules the pack cannot read (the control-plane taints bind the default scheduler): leave it unset, or list a scheduler reviewed to honour them in allowedSchedulers`);
    }
    return out;
}

export const noControlPlaneScheduling: ResourceValidationPolicy = {
    name: "no-control-plane-scheduling",
    description:
        "No pod of the platform can land on a control-plane node: no toleration of node-role.kubernetes.io/control-plane or /master, " +
        "no toleration without a key (operator Exists tolerates every taint), no spec.nodeName (past the scheduler and its taints), no schedulerName " +
        "but default-scheduler unless listed in allowedSchedulers (session 62); " +
        "every pod-bearing kind (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, Pod).",
    severity: "high",
    configSchema: {
        properties: { allowedSchedulers: { type: "array", items: { type: "string" }, default: [] } },
    },
    validateResource: workloadRule(defaults, controlPlanePlacement, (w, p) =>
        `${w.label} ${p}: application pods stay off the control-plane nodes (etcd and the API server's keys are a container escape away there). ` +
        "Remove the toleration (or give it the key of the taint it is for) and leave nodeName unset; select worker nodes with nodeSelector or affinity.",
        ["kubernetes"]),
};
