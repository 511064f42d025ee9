import { StackValidationPolicy } from "@pulumi/policy";
import { isEmptySelector, mapSelectorMatches, selectorMatches } from "../lib/selectors";
import { Finding, isScaledObject, isScaler, plainResources, scalerTarget, StackResource } from "../lib/stack";
import { hasUnknown, isRecord, isUnknown, str } from "../lib/values";
import { isK8sWorkload, K8S, Labels, namespaceOf, objectName, podTemplate } from "../lib/workloads";

/**
 * The cross-references between Kubernetes objects resolve (kube-score's service-targets-pod,
 * networkpolicy-targets-pod, statefulset-has-servicename, hpa-has-target): a Service selects pods,
 * a NetworkPolicy and a PodDisruptionBudget select pods, a StatefulSet's serviceName names a headless
 * Service, an HPA scales an existing workload. Selectors that are unknown during preview are skipped.
 */
export function danglingReferences(resources: StackResource[]): Finding[] {
    const pods: Array<{ ns: string; labels: Labels }> = resources
        .filter((r) => isK8sWorkload(r.type))
        .map((r) => ({ ns: namespaceOf(r.props), labels: podTemplate(r.type, r.props)?.labels ?? {} }));
    const out: Finding[] = [];
    const name = (r: StackResource) => objectName(r.props, r.name);
    const kind = (r: StackResource) => r.type.split(":").pop();
    for (const r of resources) {
        const ns = namespaceOf(r.props);
        const inNs = pods.filter((p) => p.ns === ns);
        if (r.type === K8S.service) {
            const sel = r.props.spec?.selector;
            if (!isRecord(sel) || Object.keys(sel).length === 0 || hasUnknown(sel) || str(r.props.spec?.type) === "ExternalName") continue;
            if (!inNs.some((p) => mapSelectorMatches(sel, p.labels))) {
                out.push({ urn: r.urn, message: `Service "${name(r)}" selects no pod in namespace "${ns}" (selector ${JSON.stringify(sel)}); it would have no endpoints: match a workload's pod labels.` });
            }
        } else if (r.type === K8S.networkPolicy || r.type === K8S.pdb) {
            const sel = r.type === K8S.pdb ? r.props.spec?.selector : r.props.spec?.podSelector;
            if (hasUnknown(sel) || (r.type === K8S.networkPolicy && isEmptySelector(sel))) continue;
            if (!inNs.some((p) => selectorMatches(sel ?? {}, p.labels))) {
                out.push({ urn: r.urn, message: `${kind(r)} "${name(r)}" selects no pod in namespace "${ns}"; it protects nothing: fix its selector to match a workload's pod labels.` });
            }
        } else if (r.type === K8S.statefulSet) {
            const svc = r.props.spec?.serviceName;
            if (isUnknown(svc)) continue;
            const target = str(svc);
            const headless = resources.find((s) => s.type === K8S.service && namespaceOf(s.props) === ns && name(s) === target);
            if (target === undefined || target === "") {
                out.push({ urn: r.urn, message: `StatefulSet "${name(r)}" has no spec.serviceName; give it a headless Service (clusterIP: None) for stable pod DNS names.` });
            } else if (!headless) {
                out.push({ urn: r.urn, message: `StatefulSet "${name(r)}" names the Service "${target}", which the stack does not declare in namespace "${ns}"; add it (clusterIP: None).` });
            } else if (str(headless.props.spec?.clusterIP) !== "None" && !isUnknown(headless.props.spec?.clusterIP)) {
                out.push({ urn: headless.urn, message: `Service "${target}" governs StatefulSet "${name(r)}" but is not headless; set clusterIP: None.` });
            }
        } else if (isScaler(r.type)) {
            const ref = r.props.spec?.scaleTargetRef;
            if (hasUnknown(ref)) continue;
            const target = scalerTarget(r);
            const targetKind = target?.kind ?? str(ref?.kind);
            const targetName = target?.name ?? str(ref?.name);
            const found = resources.some((t) => isK8sWorkload(t.type) && kind(t) === targetKind && namespaceOf(t.props) === ns && name(t) === targetName);
            if (!found) {
                out.push({ urn: r.urn, message: `${kind(r)} "${name(r)}" scales ${targetKind} "${targetName}", which the stack does not declare in namespace "${ns}"; point scaleTargetRef at the workload.` });
            }
        }
    }
    return [...out, ...competingScalers(resources)];
}

/**
 * Session 45: two scalers on one workload (two HPAs, or an HPA and a KEDA ScaledObject, which scales
 * through an HPA of its own) each write the workload's replica count to their own figure on every
 * sync: the pods come and go as they fight, and the floor the availability policies judge
 * (service-min-replicas, service-pod-disruption-budget, pod-anti-affinity) is the first declared one's
 * only. Reported on each scaler after the first.
 */
export function competingScalers(resources: StackResource[]): Finding[] {
    const byTarget = new Map<string, { t: NonNullable<ReturnType<typeof scalerTarget>>; scalers: StackResource[] }>();
    for (const r of resources.filter((h) => isScaler(h.type))) {
        const t = scalerTarget(r);
        if (t === undefined) continue;
        const key = JSON.stringify([t.namespace, t.kind, t.name]);
        byTarget.set(key, { t, scalers: [...(byTarget.get(key)?.scalers ?? []), r] });
    }
    const label = (r: StackResource) => `${isScaledObject(r.type) ? "KEDA ScaledObject" : "HorizontalPodAutoscaler"} "${objectName(r.props, r.name)}"`;
    const out: Finding[] = [];
    for (const { t, scalers } of byTarget.values()) {
        for (const r of scalers.slice(1)) {
            out.push({
                urn: r.urn,
                message: `${label(r)} scales ${t.kind} "${t.name}" in namespace "${t.namespace}", which ${label(scalers[0])} scales already: each sets the replica count to its ` +
                    "own figure on every sync, so they fight over it (pods started and stopped), and the replica floor the pack judges is the first one's only. " +
                    "Keep one scaler per workload (one HPA with every metric, or one ScaledObject with every trigger).",
            });
        }
    }
    return out;
}

export const selectorsMatchWorkloads: StackValidationPolicy = {
    name: "selectors-match-workloads",
    description:
        "Kubernetes cross-references resolve: every Service, NetworkPolicy and PodDisruptionBudget selects pods of a " +
        "declared workload, every StatefulSet names a declared headless Service, every HPA or KEDA ScaledObject scales a declared workload, " +
        "and no workload has two scalers (session 45).",
    severity: "medium",
    validateStack: (args, reportViolation) => {
        const resources = plainResources(args.resources);
        if (!resources.some((r) => isK8sWorkload(r.type))) args.notApplicable("no Kubernetes workloads in this stack");
        for (const f of danglingReferences(resources)) reportViolation(f.message, f.urn);
    },
};
