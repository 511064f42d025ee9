/**
 * Realises workload specs on Kubernetes. The namespace (Pod Security labels, default-deny network
 * policy) is created here; each object family is built in its own file and `deploy()` composes them:
 *   secrets.ts         Secret (credentials, secretKeyRef) and ConfigMap (files)
 *   storage.ts         claim templates, PersistentVolumeClaims, scratch emptyDirs
 *   pod.ts             container, probes, restricted security context, a scheduled job's companion
 *   workloads.ts       StatefulSet (+ headless Service), Deployment, Service
 *   scheduling.ts      Job (one-shot, waited for) and CronJob (scheduled)
 *   availability.ts    PodDisruptionBudget and HorizontalPodAutoscaler
 *   network-policy.ts  namespace default deny and per-workload allows
 *   ingress.ts         the public edge for the cluster's ingress controller
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LABEL_PART_OF, LABEL_WORKLOAD, PART_OF } from "../../../catalog/labels";
import {
  DeployedWorkload,
  EdgeSpec,
  ExposedEdge,
  BuiltImage,
  ImageBuildSpec,
  Runtime,
  RuntimeCapabilities,
  ScheduledJobSpec,
  validateJobCompanion,
  validateWorkloadSpec,
  WorkloadSpec,
  workloadLabels,
} from "../../workload";
import { isIngressNginxClass, isTraefikClass } from "../../edge/error-pages";
import { buildImage } from "../image-build";
import { availability } from "./availability";
import { KubernetesContext, KubernetesSettings } from "./context";
import { ingress, type ErrorPagesFor } from "./ingress";
import { namespaceIsolation, workloadNetworkPolicy } from "./network-policy";
import { podTemplate } from "./pod";
import { workloadSecrets } from "./secrets";
import { cronJob, oneShotJob } from "./scheduling";
import { workloadStorage } from "./storage";
import { deployment, service, statefulSet } from "./workloads";

export type { KubernetesSettings } from "./context";
export { k8sProbe, k8sStartupProbe, scaledCpu, scaledMemory, STARTUP_BUDGET_SECONDS } from "./pod";
export { fileKey } from "./secrets";

export const KUBERNETES_CAPABILITIES: RuntimeCapabilities = { scheduledJobs: true, scheduledJobImages: "any", edge: "ingress-controller", jobCompanions: true };

export class KubernetesRuntime extends pulumi.ComponentResource implements Runtime {
  readonly capabilities = KUBERNETES_CAPABILITIES;
  readonly namespace: pulumi.Output<string>;
  private readonly provider?: k8s.Provider;
  private readonly nsResource: k8s.core.v1.Namespace;
  private readonly ctx: KubernetesContext;

  constructor(name: string, settings: KubernetesSettings, opts?: pulumi.ComponentResourceOptions) {
    super("trading:runtime:Kubernetes", name, {}, opts);
    if (settings.renderYamlTo) {
      this.provider = new k8s.Provider(`${name}-provider`, { renderYamlToDirectory: settings.renderYamlTo }, { parent: this });
    }
    this.nsResource = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: settings.namespace,
          labels: {
            [LABEL_PART_OF]: PART_OF,
            // The apiserver judges every pod against the restricted profile.
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
          },
        },
      },
      { parent: this, provider: this.provider },
    );
    this.namespace = this.nsResource.metadata.name;
    const provider = this.provider;
    this.ctx = {
      settings,
      namespace: this.namespace,
      opts: (parent, dependsOn) => ({ parent, provider, dependsOn }),
    };
    namespaceIsolation(this.ctx, name, this);
    this.registerOutputs({ namespace: this.namespace });
  }

  deploy(spec: WorkloadSpec, parent: pulumi.Resource): DeployedWorkload {
    validateWorkloadSpec(spec, parent);
    const labels = workloadLabels(spec);
    const selector = { [LABEL_WORKLOAD]: spec.name };
    const dependsOn = [this.nsResource, ...(spec.dependsOn ?? [])];
    const files = workloadSecrets(this.ctx, spec, labels, parent, dependsOn);
    const storage = workloadStorage(this.ctx, spec, labels, parent, dependsOn);
    const template = podTemplate(this.ctx, spec, labels, files, storage);

    let ready: pulumi.Resource;
    if (spec.kind === "job") {
      ready = oneShotJob(this.ctx, spec, labels, template, parent, dependsOn);
    } else if (spec.kind === "stateful") {
      ready = statefulSet(this.ctx, spec, labels, selector, template, storage, parent, dependsOn);
    } else {
      ready = deployment(this.ctx, spec, labels, selector, template, parent, dependsOn);
      availability(this.ctx, spec, labels, selector, parent, dependsOn);
    }
    service(this.ctx, spec, labels, selector, parent, dependsOn);
    workloadNetworkPolicy(this.ctx, spec, parent, dependsOn);
    return { name: spec.name, host: spec.name, ready: [ready] };
  }

  schedule(spec: ScheduledJobSpec, parent: pulumi.Resource): DeployedWorkload {
    validateWorkloadSpec(spec, parent);
    validateJobCompanion(spec, parent);
    const labels = workloadLabels(spec);
    const dependsOn = [this.nsResource, ...(spec.dependsOn ?? [])];
    // The companion's credentials are keys of the job's Secret too; each container references its own.
    const files = workloadSecrets(this.ctx, { ...spec, secretEnv: { ...spec.secretEnv, ...spec.companion?.secretEnv } }, labels, parent, dependsOn);
    const storage = workloadStorage(this.ctx, spec, labels, parent, dependsOn);
    const template = podTemplate(this.ctx, spec, labels, files, storage, spec.companion);
    const ready = cronJob(this.ctx, spec, labels, template, parent, dependsOn);
    workloadNetworkPolicy(this.ctx, spec, parent, dependsOn);
    return { name: spec.name, host: spec.name, ready: [ready] };
  }

  expose(edge: EdgeSpec, parent: pulumi.Resource): ExposedEdge {
    // The controller's own refusals (ingress-nginx: 413, 502/503/504 ...; Traefik: no route, a gateway
    // down) go to edge-errors, in the platform's JSON shape. Another controller's are its own.
    const { className } = this.ctx.settings.ingress;
    const errorPagesFor: ErrorPagesFor | undefined = isIngressNginxClass(className) ? "ingress-nginx" : isTraefikClass(className) ? "traefik" : undefined;
    const errorPages = edge.errorPages && errorPagesFor ? this.deploy(edge.errorPages, parent) : undefined;
    ingress(this.ctx, edge, parent, [this.nsResource, ...edge.dependsOn, ...(errorPages?.ready ?? [])], errorPages ? errorPagesFor : undefined);
    return { url: `https://${edge.host}/api/` };
  }

  /**
   * Pushed to the stack's registry and run by digest, so pods run exactly this build; only
   * referenced by tag when rendering manifests or when the images were imported into the nodes.
   */
  buildImage(name: string, spec: ImageBuildSpec, parent: pulumi.Resource): BuiltImage {
    if (!this.ctx.settings.buildImages) {
      const ref = pulumi.output(`${spec.repository}:${spec.tag}`);
      return { ref, contentId: ref };
    }
    const digest = buildImage(name, spec, true, parent).repoDigest;
    return { ref: digest, contentId: digest };
  }

  operatorHost(workload: string): string {
    return `${workload}.${this.ctx.settings.namespace}.svc.cluster.local`;
  }

  operatorUrl(workload: string, port: number): string {
    return `http://${this.operatorHost(workload)}:${port} (kubectl port-forward svc/${workload} ${port})`;
  }
}
