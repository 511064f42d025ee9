/**
 * What every Kubernetes object builder of this folder receives: the namespace, the provider (a
 * real cluster, or manifests rendered to a folder) and the runtime's settings.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

export interface KubernetesSettings {
  namespace: string;
  /** Storage class of the volume claims; the cluster default when unset. */
  storageClass?: string;
  /** Render manifests into this folder instead of applying them to a cluster. */
  renderYamlTo?: string;
  /** Autoscaler bounds per workload name. */
  autoscale?: Record<string, { min: number; max: number }>;
  /**
   * When the kubelet pulls images: IfNotPresent (default), Always, or Never (images imported into
   * the node's container runtime, e.g. a local cluster without a registry).
   */
  imagePullPolicy?: "IfNotPresent" | "Always" | "Never";
  /** CPU request as a fraction of the CPU limit (default 1: requests = limits, Guaranteed QoS). */
  cpuRequestRatio?: number;
  /** Memory request as a fraction of the memory limit (default 1: requests = limits). */
  memoryRequestRatio?: number;
  /**
   * Build the program's images and push them to the registry (run by digest). False when the
   * manifests are only rendered, or when the images were imported into the nodes beforehand
   * (local images, imagePullPolicy Never): the program then only references the tag.
   */
  buildImages: boolean;
  ingress: {
    /** IngressClass of the controller that serves the edge (e.g. "nginx", "traefik"). */
    className: string;
    /** Namespace of the ingress controller, allowed to reach the entry point. */
    controllerNamespace: string;
    /** Labels of the controller's pods: with them only those pods of its namespace reach the entry point. */
    controllerPodLabels?: Record<string, string>;
    /** TLS Secret of the Ingress: an existing one, or created from the edge's certificate when it has one. */
    tlsSecretName?: string;
    /** cert-manager ClusterIssuer that issues the Ingress certificate. */
    certIssuer?: string;
    /**
     * Traefik reads traefik.io Middleware objects (its kubernetescrd provider, with their CRDs installed):
     * the Ingress's routers then carry the errors middleware (../../edge/error-pages.ts). Without it a
     * router naming a middleware Traefik cannot read would be dropped, so it is asked for, never assumed.
     */
    traefikMiddlewares?: boolean;
    /**
     * The Traefik catch-all also takes every Host no Ingress names (a host-less rule to edge-errors). Only where
     * the controller is the platform's own: on a shared one it would take every other tenant's unrouted hosts
     * (policy ingress-hosts refuses it unless the stack's policy config names edge-errors as its catchAllService).
     */
    anyHostCatchAll?: boolean;
  };
}

export interface KubernetesContext {
  settings: KubernetesSettings;
  namespace: pulumi.Output<string>;
  /** Options of a namespaced object: the runtime's provider, after the namespace exists. */
  opts(parent: pulumi.Resource, dependsOn?: pulumi.Input<pulumi.Resource>[]): pulumi.CustomResourceOptions;
}

export type Labels = Record<string, string>;
export type K8sInput = typeof k8s.types.input;
