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

/** The HorizontalPodAutoscaler scaling a workload, if the stack declares one. */
export function scalerOf(w: StackResource, resources: StackResource[]): StackResource | undefined {
    return resources.find((h) => isHpa(h.type) && namespaceOf(h.props) === namespaceOf(w.props)
        && str(h.props.spec?.scaleTargetRef?.kind) === w.type.split(":").pop()
        && str(h.props.spec?.scaleTargetRef?.name) === objectName(w.props, w.name));
}

/** The replica floor of a replicated workload: the HPA's minReplicas when one scales it, else spec.replicas (default 1). */
export function replicaFloor(w: StackResource, resources: StackResource[]): number | undefined {
    const hpa = scalerOf(w, resources);
    if (hpa) return num(hpa.props.spec?.minReplicas) ?? 1;
    return w.props.spec?.replicas === undefined ? 1 : num(w.props.spec?.replicas);
}
