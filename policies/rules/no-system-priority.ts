import { ResourceValidationPolicy } from "@pulumi/policy";
import { Workload, workloadRule } from "../lib/rule";
import { plain, str } from "../lib/values";
import { describe } from "../lib/workloads";
import { readingListItems } from "../lib/lists";

/** PriorityClass of any served version (v1, and the v1beta1/v1alpha1 of older clusters). */
const PRIORITY_CLASS = /^kubernetes:scheduling\.k8s\.io\/v[0-9a-z]+:PriorityClass$/;

/**
 * A priority class Kubernetes keeps for the cluster's own components (`system-node-critical`,
 * `system-cluster-critical`: the API server reserves the `system-` prefix). A pod of the platform in
 * one outranks every application pod of the cluster and CoreDNS's peers: the scheduler evicts
 * (preempts) lower pods to place it, and the kubelet evicts it last when the node runs short, so
 * one runaway service takes the node from what keeps the cluster running. Since Kubernetes 1.17
 * nothing limits these classes to kube-system unless a ResourceQuota does (the docs' warning: in a
 * cluster where not all users are trusted, pods at the highest priorities evict the others).
 */
export function systemPriority(w: Workload): string[] {
    if (!w.pod) return [];
    const name = str(w.pod.spec.priorityClassName);
    return name !== undefined && name.startsWith("system-")
        ? [`sets priorityClassName "${name}", the cluster's own class for its critical components: its pods preempt every application pod of the cluster to be placed, and are evicted last when a node runs short`]
        : [];
}

const workloadPriority = workloadRule({}, systemPriority, (w, p) =>
    `${w.label} ${p}. Leave priorityClassName unset (or name a class of the platform's own, with a value below the system classes').`,
    ["kubernetes"]);

export const noSystemPriority: ResourceValidationPolicy = {
    name: "no-system-priority",
    description:
        "No pod of the platform takes a system-* priority class (system-node-critical, system-cluster-critical: kept for the cluster's " +
        "own components; a pod in one preempts every application pod and is evicted last), in every pod-bearing kind; and the program " +
        "declares no PriorityClass with globalDefault: true (it would change the priority of every new pod of every namespace).",
    severity: "high",
    // One validation: the workload rule reports every other resource not applicable, which ends the call.
    // Session 53: a *List's items are the objects the API server applies, each judged as declared alone (lib/lists.ts).
    validateResource: readingListItems((args, reportViolation) => {
        if (!PRIORITY_CLASS.test(args.type)) return workloadPriority(args, reportViolation);
        if (plain(args.props).globalDefault === true) {
            reportViolation(`${describe(args.type, args.name)} sets globalDefault: true, so every pod created without a class in any namespace ` +
                "of the cluster, not only the platform's, takes its priority. Set globalDefault false and name the class in the platform's pods.");
        }
    }),
};
