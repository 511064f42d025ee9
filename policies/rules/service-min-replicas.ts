import { StackValidationPolicy } from "@pulumi/policy";
import { Environment, environmentSchema, readConfig } from "../lib/config";
import { plainResources, StackResource } from "../lib/stack";
import { num, str } from "../lib/values";
import { identity, isSingletonDeployment, K8S, namespaceOf, objectName } from "../lib/workloads";

export interface ReplicasConfig {
    environment: Environment;
    minReplicas: number;
}

const defaults: ReplicasConfig = { environment: "prod", minReplicas: 2 };

/** role=service Deployments with fewer than minReplicas (spec.replicas, or the minReplicas of an HPA scaling them). */
export function underReplicated(resources: StackResource[], cfg: ReplicasConfig = defaults): Array<{ urn: string; message: string }> {
    const hpas = resources.filter((r) => r.type === K8S.hpa);
    const out: Array<{ urn: string; message: string }> = [];
    for (const d of resources.filter((r) => r.type === K8S.deployment)) {
        if (identity(d.type, d.name, d.props).role !== "service") continue;
        // A declared singleton cannot have two replicas or a PDB that allows an eviction; its
        // downtime during a rollout is the accepted price (see the catalog entry for why).
        if (isSingletonDeployment(d.type, d.props)) continue;
        const name = objectName(d.props, d.name);
        const ns = namespaceOf(d.props);
        const hpa = hpas.find((h) => namespaceOf(h.props) === ns
            && str(h.props.spec?.scaleTargetRef?.kind) === "Deployment"
            && str(h.props.spec?.scaleTargetRef?.name) === name);
        const replicas = hpa ? num(hpa.props.spec?.minReplicas) ?? 1 : num(d.props.spec?.replicas) ?? (d.props.spec?.replicas === undefined ? 1 : undefined);
        if (replicas === undefined) continue; // computed
        if (replicas < cfg.minReplicas) {
            const source = hpa ? `its HorizontalPodAutoscaler's minReplicas is ${replicas}` : `spec.replicas is ${replicas}`;
            out.push({
                urn: d.urn,
                message: `Deployment "${name}" (role=service) would be down during a rollout or node loss: ${source}; ` +
                    `run at least ${cfg.minReplicas} replicas (spec.replicas or the HPA's minReplicas).`,
            });
        }
    }
    return out;
}

export const serviceMinReplicas: StackValidationPolicy = {
    name: "service-min-replicas",
    description: "On prod, every stateless service Deployment (trading.io/role=service) runs at least 2 replicas; declared singletons (trading.io/singleton=true with a Recreate strategy and one replica) are exempt.",
    severity: "medium",
    configSchema: {
        properties: {
            environment: environmentSchema,
            minReplicas: { type: "integer", minimum: 1, default: 2 },
        },
    },
    validateStack: (args, reportViolation) => {
        const cfg = readConfig(args, defaults);
        if (cfg.environment !== "prod") args.notApplicable("prod-only policy (config environment != prod)");
        for (const v of underReplicated(plainResources(args.resources), cfg)) reportViolation(v.message, v.urn);
    },
};
