/**
 * Availability of replicated services: a PodDisruptionBudget (one pod always up during drains) and a
 * HorizontalPodAutoscaler within the catalog's bounds. Singletons get neither.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { WorkloadSpec } from "../../workload";
import { KubernetesContext } from "./context";

export function availability(
  ctx: KubernetesContext,
  spec: WorkloadSpec,
  labels: Record<string, string>,
  selector: Record<string, string>,
  parent: pulumi.Resource,
  dependsOn: pulumi.Resource[],
): void {
  if (spec.replicas >= 2) {
    new k8s.policy.v1.PodDisruptionBudget(
      `${spec.name}-pdb`,
      { metadata: { name: spec.name, namespace: ctx.namespace, labels }, spec: { minAvailable: 1, selector: { matchLabels: selector } } },
      ctx.opts(parent, dependsOn),
    );
  }
  const bounds = ctx.settings.autoscale?.[spec.name];
  if (bounds && !spec.singleton) {
    new k8s.autoscaling.v2.HorizontalPodAutoscaler(
      `${spec.name}-hpa`,
      {
        metadata: { name: spec.name, namespace: ctx.namespace, labels },
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: spec.name },
          minReplicas: Math.max(bounds.min, spec.replicas),
          maxReplicas: Math.max(bounds.max, spec.replicas),
          metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } }],
        },
      },
      ctx.opts(parent, dependsOn),
    );
  }
}
