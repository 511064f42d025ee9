/**
 * The public edge on Kubernetes: one Ingress for the cluster's ingress controller with every public
 * route to the entry point, TLS from cert-manager or an existing Secret, HTTPS forced.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LABEL_ROLE, LABEL_WORKLOAD } from "../../../catalog/labels";
import { EDGE_READ_TIMEOUT_S } from "../../../catalog/service-settings";
import { ingressNginxErrorAnnotations } from "../../edge/error-pages";
import { EdgeSpec } from "../../workload";
import { KubernetesContext } from "./context";

/** Secret cert-manager fills when no existing TLS Secret is named. */
export const DEFAULT_TLS_SECRET = "ai-trading-tls";

/** `errorPages`: edge-errors is deployed, ingress-nginx's own refusals are sent to it (../../edge/error-pages.ts). */
export function ingress(ctx: KubernetesContext, edge: EdgeSpec, parent: pulumi.Resource, dependsOn: pulumi.Resource[], errorPages = false): k8s.networking.v1.Ingress {
  const { className, tlsSecretName, certIssuer } = ctx.settings.ingress;
  if (!tlsSecretName && !certIssuer) {
    throw new pulumi.ResourceError("the Ingress needs TLS: set certIssuer or tlsSecretName", parent);
  }
  const secretName = tlsSecretName ?? DEFAULT_TLS_SECRET;
  const labels = { [LABEL_ROLE]: "edge", [LABEL_WORKLOAD]: "ingress" };
  // A certificate from the stack's secrets becomes the Ingress's TLS secret (clusters without
  // cert-manager, e.g. the local one of scripts/cluster/); otherwise the secret exists or
  // cert-manager's ingress-shim issues it.
  const tlsSecret = edge.tls
    ? new k8s.core.v1.Secret(
        `${edge.name}-tls`,
        {
          metadata: { name: secretName, namespace: ctx.namespace, labels },
          type: "kubernetes.io/tls",
          stringData: { "tls.crt": edge.tls.cert, "tls.key": edge.tls.key },
        },
        { ...ctx.opts(parent, dependsOn), additionalSecretOutputs: ["data", "stringData"] },
      )
    : undefined;
  return new k8s.networking.v1.Ingress(
    `${edge.name}-ingress`,
    {
      metadata: {
        name: "ai-trading",
        namespace: ctx.namespace,
        labels,
        annotations: {
          "nginx.ingress.kubernetes.io/ssl-redirect": "true",
          "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
          "nginx.ingress.kubernetes.io/proxy-body-size": "1m",
          // Bounds on the gateway as the Docker edge's Nginx has them (components/edge/nginx.ts); the
          // stack keeps the gateway's REQUEST_TIMEOUT_MS within the read timeout (catalog/service-settings.ts).
          "nginx.ingress.kubernetes.io/proxy-connect-timeout": "5",
          "nginx.ingress.kubernetes.io/proxy-read-timeout": String(EDGE_READ_TIMEOUT_S),
          // No *-snippet annotation (policy ingress-no-snippets): the security headers, HSTS
          // included, come from the api-gateway itself, so they hold behind any controller.
          ...(certIssuer ? { "cert-manager.io/cluster-issuer": certIssuer } : {}),
          ...(errorPages ? ingressNginxErrorAnnotations() : {}),
        },
      },
      spec: {
        ingressClassName: className,
        tls: [{ hosts: [edge.host], secretName }],
        rules: [
          {
            host: edge.host,
            http: {
              paths: edge.routes.map((r) => ({
                path: r.path.replace(/\/$/, ""),
                pathType: r.path.endsWith("/") ? "Prefix" : "Exact",
                backend: { service: { name: edge.backend.host, port: { number: edge.backend.port } } },
              })),
            },
          },
        ],
      },
    },
    ctx.opts(parent, [...dependsOn, ...(tlsSecret ? [tlsSecret] : [])]),
  );
}
