import { StackValidationPolicy } from "@pulumi/policy";
import { Environment, environmentSchema, readConfig } from "../lib/config";
import { selectorMatches } from "../lib/selectors";
import { plainResources, replicaFloor, StackResource } from "../lib/stack";
import { arr, isRecord, str } from "../lib/values";
import { K8S_REPLICATED, objectName, podTemplate } from "../lib/workloads";

export interface AntiAffinityConfig {
    environment: Environment;
    /** Topology keys that spread replicas over failure domains. */
    topologyKeys: string[];
}

const defaults: AntiAffinityConfig = { environment: "prod", topologyKeys: ["kubernetes.io/hostname", "topology.kubernetes.io/zone"] };

/** Does the pod spec spread its own replicas over one of the topology keys (anti-affinity, preferred or required, or a spread constraint)? */
export function spreadsReplicas(spec: Record<string, any>, labels: Record<string, string>, keys: string[]): boolean {
    const aa = spec.affinity?.podAntiAffinity;
    const terms = [
        ...arr(aa?.requiredDuringSchedulingIgnoredDuringExecution),
        ...arr(aa?.preferredDuringSchedulingIgnoredDuringExecution).map((p) => (isRecord(p) ? p.podAffinityTerm : undefined)),
    ];
    if (terms.some((t) => isRecord(t) && keys.includes(str(t.topologyKey) ?? "") && selectorMatches(t.labelSelector, labels))) return true;
    return arr(spec.topologySpreadConstraints).some((c) => isRecord(c) && keys.includes(str(c.topologyKey) ?? "") && selectorMatches(c.labelSelector, labels));
}

export function unspreadReplicas(resources: StackResource[], cfg: AntiAffinityConfig = defaults): Array<{ urn: string; message: string }> {
    const out: Array<{ urn: string; message: string }> = [];
    for (const w of resources.filter((r) => K8S_REPLICATED.includes(r.type))) {
        const floor = replicaFloor(w, resources);
        if (floor === undefined || floor < 2) continue;
        const tmpl = podTemplate(w.type, w.props);
        if (!tmpl || spreadsReplicas(tmpl.spec, tmpl.labels, cfg.topologyKeys)) continue;
        out.push({
            urn: w.urn,
            message: `${w.type.split(":").pop()} "${objectName(w.props, w.name)}" runs ${floor} replicas that may all land on one node: ` +
                "add a podAntiAffinity term (preferred is enough) or a topologySpreadConstraint on kubernetes.io/hostname " +
                "selecting its own pod labels, so one node failure cannot take every replica down.",
        });
    }
    return out;
}

export const podAntiAffinity: StackValidationPolicy = {
    name: "pod-anti-affinity",
    description:
        "On prod, every workload with two or more replicas (spec.replicas or its HPA's minReplicas) spreads them over " +
        "nodes: pod anti-affinity or a topology spread constraint on the hostname (or zone), selecting its own pods.",
    severity: "medium",
    configSchema: {
        properties: {
            environment: environmentSchema,
            topologyKeys: { type: "array", items: { type: "string" }, default: defaults.topologyKeys },
        },
    },
    validateStack: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        if (cfg.environment !== "prod") args.notApplicable("prod-only policy (config environment != prod)");
        for (const v of unspreadReplicas(plainResources(args.resources), cfg)) reportViolation(v.message, v.urn);
    },
};
