import { StackValidationPolicy } from "@pulumi/policy";
import { Environment, environmentSchema, readConfig } from "../lib/config";
import { isScaledObject, plainResources, replicaFloor, scalerOf, StackResource } from "../lib/stack";
import { identity, isSingletonDeployment, K8S_REPLICATED, objectName } from "../lib/workloads";

export interface ReplicasConfig {
    environment: Environment;
    minReplicas: number;
}

const defaults: ReplicasConfig = { environment: "prod", minReplicas: 2 };

/**
 * role=service workloads that run `spec.replicas` pods (a Deployment, or a StatefulSet, ReplicaSet
 * or ReplicationController, which must not dodge the rule by kind) with fewer than minReplicas
 * (spec.replicas, or the minReplicas of an HPA scaling them).
 */
export function underReplicated(resources: StackResource[], cfg: ReplicasConfig = defaults): Array<{ urn: string; message: string }> {
    const out: Array<{ urn: string; message: string }> = [];
    for (const d of resources.filter((r) => K8S_REPLICATED.includes(r.type))) {
        if (identity(d.type, d.name, d.props).role !== "service") continue;
        // A declared singleton cannot have two replicas or a PDB that allows an eviction; its
        // downtime during a rollout is the accepted price (see the catalog entry for why).
        if (isSingletonDeployment(d.type, d.props)) continue;
        const replicas = replicaFloor(d, resources);
        if (replicas === undefined) continue; // computed
        if (replicas < cfg.minReplicas) {
            const scaler = scalerOf(d, resources);
            const source = scaler === undefined ? `spec.replicas is ${replicas}`
                : isScaledObject(scaler.type) ? `its KEDA ScaledObject's minReplicaCount is ${replicas}${scaler.props.spec?.minReplicaCount === undefined ? " (KEDA's default)" : ""}`
                    : `its HorizontalPodAutoscaler's minReplicas is ${replicas}`;
            out.push({
                urn: d.urn,
                message: `${d.type.split(":").pop()} "${objectName(d.props, d.name)}" (role=service) would be down during a rollout or node loss: ${source}; ` +
                    `run at least ${cfg.minReplicas} replicas (${scaler && isScaledObject(scaler.type) ? "the ScaledObject's minReplicaCount" : "spec.replicas or the HPA's minReplicas"}).`,
            });
        }
    }
    return out;
}

export const serviceMinReplicas: StackValidationPolicy = {
    name: "service-min-replicas",
    description: "On prod, every stateless service (trading.io/role=service Deployment, or StatefulSet, ReplicaSet or ReplicationController) runs at least 2 replicas; declared singletons (trading.io/singleton=true with a Recreate strategy and one replica) are exempt.",
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
