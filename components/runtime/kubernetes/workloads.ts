/** Long-running workloads: StatefulSets (with a headless Service) for data, Deployments for the rest, and their Service. */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { WorkloadSpec } from "../../workload";
import { KubernetesContext } from "./context";
import { portName, podTemplate } from "./pod";
import { WorkloadStorage } from "./storage";

type PodTemplate = ReturnType<typeof podTemplate>;

const servicePorts = (spec: WorkloadSpec) => spec.ports.map((p) => ({ name: portName(p.name), port: p.port, targetPort: p.port }));

export function statefulSet(
  ctx: KubernetesContext,
  spec: WorkloadSpec,
  labels: Record<string, string>,
  selector: Record<string, string>,
  template: PodTemplate,
  storage: WorkloadStorage,
  parent: pulumi.Resource,
  dependsOn: pulumi.Resource[],
): k8s.apps.v1.StatefulSet {
  new k8s.core.v1.Service(
    `${spec.name}-headless`,
    {
      metadata: { name: `${spec.name}-headless`, namespace: ctx.namespace, labels },
      spec: { clusterIP: "None", selector, ports: servicePorts(spec) },
    },
    ctx.opts(parent, dependsOn),
  );
  return new k8s.apps.v1.StatefulSet(
    `${spec.name}-statefulset`,
    {
      metadata: { name: spec.name, namespace: ctx.namespace, labels },
      spec: {
        serviceName: `${spec.name}-headless`,
        replicas: spec.replicas,
        selector: { matchLabels: selector },
        template,
        volumeClaimTemplates: storage.claimTemplates,
      },
    },
    ctx.opts(parent, dependsOn),
  );
}

export function deployment(
  ctx: KubernetesContext,
  spec: WorkloadSpec,
  labels: Record<string, string>,
  selector: Record<string, string>,
  template: PodTemplate,
  parent: pulumi.Resource,
  dependsOn: pulumi.Resource[],
): k8s.apps.v1.Deployment {
  return new k8s.apps.v1.Deployment(
    `${spec.name}-deployment`,
    {
      metadata: { name: spec.name, namespace: ctx.namespace, labels },
      spec: {
        replicas: spec.replicas,
        selector: { matchLabels: selector },
        // A singleton is stopped before its successor starts; others roll with no capacity loss.
        strategy: spec.singleton ? { type: "Recreate" } : { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template,
      },
    },
    ctx.opts(parent, dependsOn),
  );
}

/** The stable name peers use (ClusterIP unless an operator deliberately exposes the workload). */
export function service(
  ctx: KubernetesContext,
  spec: WorkloadSpec,
  labels: Record<string, string>,
  selector: Record<string, string>,
  parent: pulumi.Resource,
  dependsOn: pulumi.Resource[],
): void {
  if (spec.kind === "job" || spec.ports.length === 0) return;
  new k8s.core.v1.Service(
    `${spec.name}-service`,
    {
      metadata: { name: spec.name, namespace: ctx.namespace, labels },
      spec: { type: spec.serviceType ?? "ClusterIP", selector, ports: servicePorts(spec) },
    },
    ctx.opts(parent, dependsOn),
  );
}
