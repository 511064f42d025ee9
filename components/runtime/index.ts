/**
 * The one place that picks a runtime for the stack's target. Everything else holds a `Runtime` and
 * uses its capabilities; nothing outside components/runtime/ imports a provider package.
 */
import * as pulumi from "@pulumi/pulumi";
import { sizingOf } from "../../catalog";
import { StackConfig, Target } from "../../stacks/config";
import { stateLocation } from "../../stacks/state-location";
import { Runtime, RuntimeCapabilities } from "../workload";
import { DOCKER_CAPABILITIES, DockerRuntime } from "./docker";
import { KUBERNETES_CAPABILITIES, KubernetesRuntime } from "./kubernetes";

export function runtimeCapabilities(target: Target): RuntimeCapabilities {
  return target === "docker" ? DOCKER_CAPABILITIES : KUBERNETES_CAPABILITIES;
}

export function createRuntime(name: string, config: StackConfig, parent: pulumi.Resource): Runtime {
  if (config.target === "docker") {
    return new DockerRuntime(
      `${name}-docker`,
      {
        prefix: `ai-trading-${config.stack}`,
        operatorBindAddress: config.docker.adminBindAddress,
        subnet: config.docker.subnet,
        pidsLimits: config.docker.pidsLimits,
        // The state this run deploys from (pulumi-env.sh's file://<clone>/.pulumi-state): a label
        // that tells this clone's containers from another clone's of the same stack.
        stateLocation: stateLocation(process.env.PULUMI_BACKEND_URL),
      },
      { parent },
    );
  }
  const k = config.kubernetes;
  return new KubernetesRuntime(
    `${name}-k8s`,
    {
      namespace: k.namespace,
      storageClass: k.storageClass,
      renderYamlTo: k.renderYamlTo,
      imagePullPolicy: k.imagePullPolicy,
      cpuRequestRatio: k.cpuRequestRatio,
      memoryRequestRatio: k.memoryRequestRatio,
      // Local images on Kubernetes are built on the Docker host and imported into the nodes
      // beforehand (scripts/cluster/platform-images.sh): the program only references them.
      buildImages: config.imageSource === "upstream" && !k.renderYamlTo,
      // The autoscaler's floor is the service's replica count, so a stack that lowers it (a
      // single-node cluster) is not scaled straight back up to the catalog's minimum.
      autoscale: Object.fromEntries(config.services.map((s) => [s.name, { min: config.serviceReplicas[s.name], max: sizingOf(s).scaling.maxReplicas }])),
      ingress: {
        className: k.ingressClass,
        controllerNamespace: k.ingressControllerNamespace,
        controllerPodLabels: k.ingressControllerPodLabels,
        traefikMiddlewares: k.traefikMiddlewares,
        anyHostCatchAll: k.edgeErrorsAnyHost,
        tlsSecretName: k.tlsSecretName,
        certIssuer: k.certIssuer,
      },
    },
    { parent },
  );
}
