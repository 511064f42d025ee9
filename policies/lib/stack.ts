/** Plain view of stack resources for stack policies (pure helpers take this). */
import type { PolicyResource } from "@pulumi/policy";
import { num, plain, str } from "./values";
import { isHpa, namespaceOf, objectName } from "./workloads";

export interface StackResource {
    type: string;
    name: string;
    urn: string;
    props: Record<string, any>;
}

export function plainResources(resources: PolicyResource[]): StackResource[] {
    return resources.map((r) => ({ type: r.type, name: r.name, urn: r.urn, props: plain(r.props) }));
}

/**
 * Session 44: a KEDA ScaledObject (keda.sh) scales its target through an HPA KEDA writes at apply
 * time, out of the stack's resources, down to `minReplicaCount`, whose default is 0 (scale to zero
 * when idle): a service so scaled is down until its next event.
 */
export function isScaledObject(type: string): boolean {
    return /^kubernetes:keda\.sh\/v1alpha1:ScaledObject$/.test(type);
}

/** The HorizontalPodAutoscaler (or KEDA ScaledObject, whose target kind defaults to Deployment) scaling a workload, if the stack declares one. */
export function scalerOf(w: StackResource, resources: StackResource[]): StackResource | undefined {
    const kind = w.type.split(":").pop();
    return resources.find((h) => (isHpa(h.type) || isScaledObject(h.type)) && namespaceOf(h.props) === namespaceOf(w.props)
        && (str(h.props.spec?.scaleTargetRef?.kind) ?? (isScaledObject(h.type) ? "Deployment" : undefined)) === kind
        && str(h.props.spec?.scaleTargetRef?.name) === objectName(w.props, w.name));
}

/**
 * The replica floor of a replicated workload: the HPA's minReplicas (default 1) or the ScaledObject's
 * minReplicaCount (default 0) when one scales it, else spec.replicas (default 1).
 */
export function replicaFloor(w: StackResource, resources: StackResource[]): number | undefined {
    const scaler = scalerOf(w, resources);
    if (scaler && isScaledObject(scaler.type)) return num(scaler.props.spec?.minReplicaCount) ?? (scaler.props.spec?.minReplicaCount === undefined ? 0 : undefined);
    if (scaler) return num(scaler.props.spec?.minReplicas) ?? 1;
    return w.props.spec?.replicas === undefined ? 1 : num(w.props.spec?.replicas);
}
