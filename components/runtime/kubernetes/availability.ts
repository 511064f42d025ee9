/**
 * Availability of replicated services: a PodDisruptionBudget (one pod always up during drains) and a
 * HorizontalPodAutoscaler within the catalog's bounds. Singletons get neither.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { WorkloadSpec } from "../../workload";
import { KubernetesContext } from "./context";

/** CPU use, as a share of the CPU limit, above which the autoscaler adds pods. */
export const CPU_TARGET_PERCENT = 70;

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
  // Utilization is usage over the request: with requests scaled down (cpuRequestRatio, a small
  // cluster) the target scales up by the same factor, so the HPA adds pods at the same absolute
  // CPU as with full requests instead of scaling an idle fleet to its maximum.
  const averageUtilization = Math.round(CPU_TARGET_PERCENT / (ctx.settings.cpuRequestRatio ?? 1));
  if (bounds && !spec.singleton) {
    new k8s.autoscaling.v2.HorizontalPodAutoscaler(
      `${spec.name}-hpa`,
      {
        metadata: { name: spec.name, namespace: ctx.namespace, labels },
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: spec.name },
          minReplicas: Math.max(bounds.min, spec.replicas),
          maxReplicas: Math.max(bounds.max, spec.replicas),
          metrics: [{ type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization } } }],
        },
      },
      ctx.opts(parent, dependsOn),
    );
  }
}
