/**
 * Network isolation: the namespace denies all ingress and egress by default (DNS excepted), and each
 * workload gets one NetworkPolicy with the explicit allows of the topology (who connects to whom).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LABEL_WORKLOAD } from "../../../catalog/labels";
import { InternetEgress, METADATA_RANGES, PRIVATE_RANGES } from "../../internet-egress";
import { INGRESS_CONTROLLER, WorkloadSpec, workloadLabels } from "../../workload";
import { KubernetesContext } from "./context";

/** default-deny plus DNS to kube-system, for every pod of the namespace. */
export function namespaceIsolation(ctx: KubernetesContext, name: string, parent: pulumi.Resource): void {
  new k8s.networking.v1.NetworkPolicy(
    `${name}-default-deny`,
    { metadata: { name: "default-deny", namespace: ctx.namespace }, spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] } },
    ctx.opts(parent),
  );
  new k8s.networking.v1.NetworkPolicy(
    `${name}-allow-dns`,
    {
      metadata: { name: "allow-dns", namespace: ctx.namespace },
      spec: {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [
          {
            to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } } }],
            ports: [
              { protocol: "UDP", port: 53 },
              { protocol: "TCP", port: 53 },
            ],
          },
        ],
      },
    },
    ctx.opts(parent),
  );
}

/** Explicit allows on top of the namespace's default deny. */
export function workloadNetworkPolicy(ctx: KubernetesContext, spec: WorkloadSpec, parent: pulumi.Resource, dependsOn: pulumi.Resource[]): void {
  const peer = (name: string): k8s.types.input.networking.v1.NetworkPolicyPeer =>
    name === INGRESS_CONTROLLER ? ingressControllerPeer(ctx) : { podSelector: { matchLabels: { [LABEL_WORKLOAD]: name } } };
  const ingress: k8s.types.input.networking.v1.NetworkPolicyIngressRule[] =
    spec.acceptsFrom.length > 0 && spec.ports.length > 0
      ? [{ from: [...new Set(spec.acceptsFrom)].sort().map(peer), ports: spec.ports.map((p) => ({ protocol: "TCP", port: p.port })) }]
      : [];
  const egress: k8s.types.input.networking.v1.NetworkPolicyEgressRule[] = [
    ...(spec.connectsTo.length > 0 ? [{ to: [...new Set(spec.connectsTo)].sort().map(peer) }] : []),
    ...(spec.internetEgress ? internetEgressRules(spec.internetEgress) : []),
  ];
  new k8s.networking.v1.NetworkPolicy(
    `${spec.name}-netpol`,
    {
      metadata: { name: spec.name, namespace: ctx.namespace, labels: workloadLabels(spec) },
      spec: { podSelector: { matchLabels: { [LABEL_WORKLOAD]: spec.name } }, policyTypes: ["Ingress", "Egress"], ingress, egress },
    },
    ctx.opts(parent, dependsOn),
  );
}

/**
 * The ingress controller as a peer: the pods of its namespace, narrowed to its pods' labels when the
 * stack gives them (one peer, so both selectors must match: a namespace shared with other pods, such
 * as kube-system, admits the controller alone).
 */
function ingressControllerPeer(ctx: KubernetesContext): k8s.types.input.networking.v1.NetworkPolicyPeer {
  const { controllerNamespace, controllerPodLabels } = ctx.settings.ingress;
  return {
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": controllerNamespace } },
    ...(controllerPodLabels !== undefined ? { podSelector: { matchLabels: controllerPodLabels } } : {}),
  };
}

/**
 * The public internet (every address but the private ranges and the metadata service's) on the workload's public ports, and
 * each private address it must reach (an SMTP relay inside the network) on its own port.
 */
export function internetEgressRules(egress: InternetEgress): k8s.types.input.networking.v1.NetworkPolicyEgressRule[] {
  return [
    ...(egress.publicPorts.length > 0
      ? [{ to: [{ ipBlock: { cidr: "0.0.0.0/0", except: [...PRIVATE_RANGES, ...METADATA_RANGES] } }], ports: egress.publicPorts.map((port) => ({ protocol: "TCP", port })) }]
      : []),
    ...egress.privateHosts.map((h) => ({ to: [{ ipBlock: { cidr: `${h.address}/32` } }], ports: [{ protocol: "TCP", port: h.port }] })),
  ];
}
