/** Plain view of stack resources for stack policies (pure helpers take this). */
import type { PolicyResource } from "@pulumi/policy";
import { listItems } from "./lists";
import { num, plain, str } from "./values";
import { isHpa, namespaceOf, objectName } from "./workloads";

export interface StackResource {
    type: string;
    name: string;
    urn: string;
    props: Record<string, any>;
}

/** A stack policy's report: the resource it is about, and what is wrong with it. */
export interface Finding {
    urn: string;
    message: string;
}

/** Session 51b: a `*List` resource's items are resources of the stack too (lib/lists.ts), with the list's URN. */
export function plainResources(resources: PolicyResource[]): StackResource[] {
    return resources.flatMap((r) => {
        const props = plain(r.props);
        const items = listItems(r.type, r.name, props);
        return items.length ? items.map((i) => ({ ...i, urn: r.urn })) : [{ type: r.type, name: r.name, urn: r.urn, props }];
    });
}

/**
 * Session 44: a KEDA ScaledObject (keda.sh) scales its target through an HPA KEDA writes at apply
 * time, out of the stack's resources, down to `minReplicaCount`, whose default is 0 (scale to zero
 * when idle): a service so scaled is down until its next event.
 */
export function isScaledObject(type: string): boolean {
    return /^kubernetes:keda\.sh\/v1alpha1:ScaledObject$/.test(type);
}

/** Whether a resource scales a workload: a HorizontalPodAutoscaler (v1 or v2) or a KEDA ScaledObject. */
export function isScaler(type: string): boolean {
    return isHpa(type) || isScaledObject(type);
}

/**
 * The workload a scaler scales (`scaleTargetRef`; a ScaledObject's kind defaults to Deployment), as
 * namespace, kind and name; undefined when a part is unknown during preview or missing.
 */
export function scalerTarget(h: StackResource): { namespace: string; kind: string; name: string } | undefined {
    const ref = h.props.spec?.scaleTargetRef;
    const kind = str(ref?.kind) ?? (isScaledObject(h.type) && ref?.kind === undefined ? "Deployment" : undefined);
    const name = str(ref?.name);
    return kind === undefined || name === undefined ? undefined : { namespace: namespaceOf(h.props), kind, name };
}

/** Every HorizontalPodAutoscaler or KEDA ScaledObject the stack declares scaling a workload, in declaration order. */
export function scalersOf(w: StackResource, resources: StackResource[]): StackResource[] {
    const kind = w.type.split(":").pop();
    return resources.filter((h) => {
        const t = isScaler(h.type) ? scalerTarget(h) : undefined;
        return t !== undefined && t.namespace === namespaceOf(w.props) && t.kind === kind && t.name === objectName(w.props, w.name);
    });
}

/**
 * The HorizontalPodAutoscaler (or KEDA ScaledObject) scaling a workload, if the stack declares one: the
 * first declared (a second one on the same workload is selectors-match-workloads', session 45).
 */
export function scalerOf(w: StackResource, resources: StackResource[]): StackResource | undefined {
    return scalersOf(w, resources)[0];
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
