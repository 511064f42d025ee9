/**
 * The public edge on Kubernetes: one Ingress for the cluster's ingress controller with every public
 * route to the entry point, TLS from cert-manager or an existing Secret, HTTPS forced.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { LABEL_ROLE, LABEL_WORKLOAD } from "../../../catalog/labels";
import { EDGE_READ_TIMEOUT_S } from "../../../catalog/service-settings";
import {
  EDGE_ERRORS_PORT,
  EDGE_ERRORS_WORKLOAD,
  ingressNginxErrorAnnotations,
  traefikErrorsMiddlewareRef,
  traefikErrorsMiddlewareSpec,
  TRAEFIK_ERRORS_MIDDLEWARE,
  TRAEFIK_MIDDLEWARES_ANNOTATION,
} from "../../edge/error-pages";
import { EdgeSpec } from "../../workload";
import { KubernetesContext } from "./context";

/** Secret cert-manager fills when no existing TLS Secret is named. */
export const DEFAULT_TLS_SECRET = "ai-trading-tls";

/** Which controller's refusals are sent to edge-errors (../../edge/error-pages.ts), when it is deployed. */
export type ErrorPagesFor = "ingress-nginx" | "traefik";

/**
 * `errorPages`: edge-errors is deployed and the controller's own refusals are sent to it: ingress-nginx's
 * by the Ingress's annotations, Traefik's by a catch-all
 * Ingress and, where it reads Middlewares, the errors middleware on the Ingress's routers.
 */
export function ingress(ctx: KubernetesContext, edge: EdgeSpec, parent: pulumi.Resource, dependsOn: pulumi.Resource[], errorPages?: ErrorPagesFor): k8s.networking.v1.Ingress {
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
  const traefikMiddleware = errorPages === "traefik" && ctx.settings.ingress.traefikMiddlewares ? traefikErrorsMiddleware(ctx, edge, parent, dependsOn) : undefined;
  if (errorPages === "traefik") traefikCatchAll(ctx, edge, secretName, parent, [...dependsOn, ...(tlsSecret ? [tlsSecret] : [])]);
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
          ...(errorPages === "ingress-nginx" ? ingressNginxErrorAnnotations() : {}),
          ...(traefikMiddleware ? { [TRAEFIK_MIDDLEWARES_ANNOTATION]: ctx.namespace.apply(traefikErrorsMiddlewareRef) } : {}),
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
    ctx.opts(parent, [...dependsOn, ...(tlsSecret ? [tlsSecret] : []), ...(traefikMiddleware ? [traefikMiddleware] : [])]),
  );
}

/** Traefik's errors middleware (traefik.io/v1alpha1 Middleware): its own 502 on the Ingress's routers to edge-errors' status port. */
function traefikErrorsMiddleware(ctx: KubernetesContext, edge: EdgeSpec, parent: pulumi.Resource, dependsOn: pulumi.Resource[]): k8s.apiextensions.CustomResource {
  return new k8s.apiextensions.CustomResource(
    `${edge.name}-errors-middleware`,
    {
      apiVersion: "traefik.io/v1alpha1",
      kind: "Middleware",
      metadata: { name: TRAEFIK_ERRORS_MIDDLEWARE, namespace: ctx.namespace, labels: { [LABEL_ROLE]: "edge", [LABEL_WORKLOAD]: "ingress" } },
      spec: traefikErrorsMiddlewareSpec(),
    },
    ctx.opts(parent, dependsOn),
  );
}

type IngressRule = { host?: string; http: { paths: Array<{ path: string; pathType: string; backend: { service: { name: string; port: { number: number } } } }> } };

/**
 * The catch-all Ingress's rules: `/` on the platform's host to edge-errors and, with `anyHost` (trading:edgeErrorsAnyHost, a
 * controller of the platform's own), the same path without a host: Traefik's `PathPrefix(/)` router, shorter than every
 * `Host(..) && ..` rule and so below all of them, takes a Host no Ingress names, which edge-errors answers 404 NOT_FOUND
 * whatever its path. A rule rather than spec.defaultBackend: the same router Traefik makes of every rule, and dropped with
 * edge-errors' endpoints like the platform host's one.
 */
export function catchAllRules(host: string, anyHost: boolean): IngressRule[] {
  const toEdgeErrors = { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: EDGE_ERRORS_WORKLOAD, port: { number: EDGE_ERRORS_PORT } } } }] };
  return [{ host, http: toEdgeErrors }, ...(anyHost ? [{ http: toEdgeErrors }] : [])];
}

/**
 * Traefik's catch-all: a `Prefix` path `/` on the platform's host, Traefik's `Host(..) && PathPrefix(/)`
 * router, the shortest rule of the host's and so its lowest priority: a URL no route of the platform's
 * Ingress takes, or one of a route whose router Traefik dropped (the gateway's Service without a ready
 * pod), reaches edge-errors, which answers 404 or 503 by the path. An Ingress of its own, with the same
 * host, TLS and HTTPS redirect as the platform's (policies edge-tls-only, ingress-hosts): Traefik skips the
 * path of a Service without endpoints, and edge-errors down must only take this one with it. With `anyHostCatchAll`
 * it also has the host-less rule of `catchAllRules`.
 */
function traefikCatchAll(ctx: KubernetesContext, edge: EdgeSpec, secretName: string, parent: pulumi.Resource, dependsOn: pulumi.Resource[]): k8s.networking.v1.Ingress {
  return new k8s.networking.v1.Ingress(
    `${edge.name}-catch-all-ingress`,
    {
      metadata: {
        name: "ai-trading-catch-all",
        namespace: ctx.namespace,
        labels: { [LABEL_ROLE]: "edge", [LABEL_WORKLOAD]: "ingress" },
        annotations: { "nginx.ingress.kubernetes.io/ssl-redirect": "true", "nginx.ingress.kubernetes.io/force-ssl-redirect": "true" },
      },
      spec: {
        ingressClassName: ctx.settings.ingress.className,
        tls: [{ hosts: [edge.host], secretName }],
        rules: catchAllRules(edge.host, ctx.settings.ingress.anyHostCatchAll === true),
      },
    },
    ctx.opts(parent, dependsOn),
  );
}
