/**
 * The edge's own refusals in the platform's JSON error shape, on both targets (one table, EDGE_ERRORS):
 * - Docker: the edge's Nginx answers them itself (./nginx.ts: `error_page` to an internal location);
 * - Kubernetes with ingress-nginx (session 52): the controller answers them with its HTML pages unless
 *   the Ingress sends them to a default backend (`custom-http-errors` + `default-backend`), so the
 *   runtime deploys this small Nginx workload, `edge-errors`, which answers by the status ingress-nginx
 *   names in `X-Code`, and annotates the Ingress (components/runtime/kubernetes/ingress.ts). With
 *   `disable-proxy-intercept-errors` only what the controller produces itself goes there: the gateway's
 *   own 400/502/503/504 (a field named, a Retry-After) pass as the gateway wrote them. A request that
 *   reaches the default backend without `X-Code` is one ingress-nginx sent there because the gateway's
 *   Service has no ready endpoint: a 503.
 * - Kubernetes with Traefik (session 53; the local cluster's controller): Traefik answers a URL no router
 *   takes 404 in plain text, and a gateway pod that refuses the connection 502. The runtime deploys the
 *   same edge-errors and adds a catch-all Ingress (only a default backend: Traefik's lowest-priority
 *   router, `PathPrefix(/)`) to it, where a request without `X-Code` is answered by its path: a public
 *   route's 503 (Traefik drops the routers of a Service without ready endpoints, so the gateway being
 *   down lands here), any other path 404. Where the controller reads Traefik's Middleware objects
 *   (`trading:traefikMiddlewares`), an `errors` Middleware on the Ingress's routers sends Traefik's own
 *   502 to edge-errors' second port, which answers the status in the path (`/502`). Only 502: the
 *   middleware replaces every answer of a listed status, the gateway's own included (Traefik keeps
 *   neither its body nor its headers), and the gateway answers 503 and 504 itself with a code, a field
 *   or a Retry-After that must pass (Traefik answers no 504 without forwarding timeouts, and no 503 when
 *   it drops an endpoint-less router); its 502s become the generic one, with a Retry-After.
 * - ingress-nginx's refusals before it picks a location (a malformed request, a URL or header block over
 *   its buffers: 400, 414, 431) follow its ConfigMap, not the Ingress: `INGRESS_NGINX_CONTROLLER_DATA`.
 */
import type { ContainerImage } from "../../stacks/images";
import { INGRESS_CONTROLLER, probe, type Route, WorkloadSpec } from "../workload";

/** Nginx's temporary files under /tmp (the container's root file system is read-only): the edge's and edge-errors' alike. */
export const NGINX_TEMP_PATHS = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((k) => `${k}_temp_path /tmp/${k};`).join("\n  ");

export interface EdgeError {
  /** The status Nginx produces (494: its "request header too large", sent as 400 unless mapped). */
  status: number;
  /** The status the client is answered. */
  answer: number;
  code: string;
  message: string;
  field?: string;
}

export const EDGE_ERRORS: readonly EdgeError[] = [
  { status: 400, answer: 400, code: "BAD_REQUEST", message: "The edge refused the request headers (malformed or sent twice)", field: "headers" },
  { status: 494, answer: 431, code: "HEADERS_TOO_LARGE", message: "The request headers are too large", field: "headers" },
  { status: 414, answer: 414, code: "URI_TOO_LONG", message: "The request URL is too long", field: "url" },
  { status: 413, answer: 413, code: "PAYLOAD_TOO_LARGE", message: "The request body is over the 1 MiB limit of the edge", field: "body" },
  { status: 502, answer: 502, code: "UPSTREAM_UNAVAILABLE", message: "The gateway cannot be reached; try again" },
  { status: 503, answer: 503, code: "UPSTREAM_UNAVAILABLE", message: "The gateway is not available; try again" },
  { status: 504, answer: 504, code: "UPSTREAM_TIMEOUT", message: "The gateway did not answer in time; try again" },
];

/** The body, for a single-quoted Nginx string (so no quote in a message). */
export const edgeErrorBody = (e: EdgeError): string => JSON.stringify({ error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) } });

/** A URL no public route takes (Traefik's catch-all router, ingress-nginx's default server). */
export const NO_ROUTE: EdgeError = { status: 404, answer: 404, code: "NOT_FOUND", message: "No public route answers this URL", field: "url" };

/**
 * Traefik's own 502 (a gateway pod that refused the connection), sent by its `errors` middleware. The
 * middleware also replaces the gateway's own 502s (an upstream restarting or unreachable), their headers
 * with them: the text is true of both, and edge-errors answers the `Retry-After: 1` the gateway gives them.
 */
export const TRAEFIK_ERRORS: readonly EdgeError[] = [
  { status: 502, answer: 502, code: "UPSTREAM_UNAVAILABLE", message: "The service behind this route cannot be reached now; retry" },
];

/** The default backend's name (Deployment, Service), the `default-backend` annotation's value. */
export const EDGE_ERRORS_WORKLOAD = "edge-errors";
/** Where ingress-nginx and Traefik's catch-all router send requests (the Service's first port: ingress-nginx's default backend takes it). */
export const EDGE_ERRORS_PORT = 8080;
/** Where Traefik's errors middleware asks `/<status>`: no router sends a client's request there. */
export const EDGE_ERRORS_STATUS_PORT = 8081;
/** Traefik's errors middleware (a traefik.io Middleware of this name, in the platform's namespace). */
export const TRAEFIK_ERRORS_MIDDLEWARE = "edge-errors";

/** The Ingress annotations that send ingress-nginx's own refusals to `edge-errors` (ingress-nginx 1.10 or later reads the last). */
export function ingressNginxErrorAnnotations(): Record<string, string> {
  return {
    "nginx.ingress.kubernetes.io/custom-http-errors": EDGE_ERRORS.map((e) => e.status).join(","),
    "nginx.ingress.kubernetes.io/default-backend": EDGE_ERRORS_WORKLOAD,
    "nginx.ingress.kubernetes.io/disable-proxy-intercept-errors": "true",
  };
}

export { isIngressNginxClass, isTraefikClass } from "../../catalog/edge";

/** The `errors` middleware's spec (traefik.io/v1alpha1 Middleware): Traefik's own refusals on the routers to edge-errors' status port. */
export function traefikErrorsMiddlewareSpec(): { errors: { status: string[]; service: { name: string; port: number }; query: string } } {
  return { errors: { status: TRAEFIK_ERRORS.map((e) => String(e.status)), service: { name: EDGE_ERRORS_WORKLOAD, port: EDGE_ERRORS_STATUS_PORT }, query: "/{status}" } };
}

/** The Ingress annotation that puts middlewares on every router of the Ingress. */
export const TRAEFIK_MIDDLEWARES_ANNOTATION = "traefik.ingress.kubernetes.io/router.middlewares";
/** The errors middleware as that annotation names it: Traefik's `<namespace>-<name>@kubernetescrd`. */
export const traefikErrorsMiddlewareRef = (namespace: string): string => `${namespace}-${TRAEFIK_ERRORS_MIDDLEWARE}@kubernetescrd`;

/**
 * ingress-nginx's refusals before it picks a location (400 a malformed request or header, 414 a URL and
 * 494 a header block over its buffers) are answered by its default server, which reads the controller's
 * ConfigMap, not the Ingress: `custom-http-errors` there sends them to the controller's default backend.
 * The ConfigMap's keys, set where the controller is installed, as its flag is: the program does not deploy
 * the controller, and patching data into its ConfigMap is what policy no-object-patches refuses (nothing
 * would check the object it makes). `disable-proxy-intercept-errors` keeps every backend's own answers of those codes, the gateway's and any
 * other application's on the controller, as they were written.
 */
export const INGRESS_NGINX_CONTROLLER_DATA: Readonly<Record<string, string>> = {
  "custom-http-errors": EDGE_ERRORS.filter((e) => [400, 414, 494].includes(e.status)).map((e) => e.status).join(","),
  "disable-proxy-intercept-errors": "true",
};

/** The controller's default backend: only its flag names it, set where the controller is installed (the program does not deploy it). */
export const ingressNginxDefaultBackendFlag = (namespace: string): string => `--default-backend-service=${namespace}/${EDGE_ERRORS_WORKLOAD}`;

/**
 * The nginx `map` from a request's path to whether a public route takes it (as the Ingress matches its
 * paths: a `Prefix` path `/api/orders` takes `/api/orders` and `/api/orders/...`, an `Exact` one itself).
 * Paths come from the catalog (`/api/<route>/`): no character of them needs quoting beyond the regex's.
 */
function publicRouteMap(routes: readonly Route[]): string {
  const escape = (p: string) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const entries = routes.map((r) => (r.path.endsWith("/") ? `    "~^${escape(r.path.replace(/\/$/, ""))}(/|$)" 1;` : `    "${r.path}" 1;`));
  return `  map $uri $public_route {
    default 0;
${entries.join("\n")}
  }`;
}

const UNAVAILABLE = EDGE_ERRORS.find((e) => e.status === 503)!;

/**
 * The nginx `map`s from a request's Host to whether it is the platform's (`host`, the stack's ingressHost;
 * nginx's `$host` is the Host header without its port, in lower case) and from that and the path to
 * whether the request is one of the gateway's routes: only then is a request without X-Code a 503 (the
 * gateway has no ready pod). Any other host is no route of the platform's, whatever its path: a 404.
 */
function gatewayRouteMap(host: string): string {
  return `  map $host $platform_host {
    default 0;
    "${host.toLowerCase()}" 1;
  }
  map "$platform_host:$public_route" $gateway_route {
    default 0;
    "1:1" 1;
  }`;
}

/**
 * edge-errors' nginx.conf. Its first port: each X-Code (ingress-nginx) answered with its JSON body and
 * status, another code 503; without one (ingress-nginx's default backend and default server, Traefik's
 * catch-all router) by the request's host and path: a public route on the platform's host (`host`) 503
 * (the gateway has no ready pod), any other URL or host 404 (session 54: another host's `/api/orders/`
 * was a 503 too). Its second port: Traefik's errors middleware asking `/<status>`.
 */
export function errorPagesConfig(routes: readonly Route[], host: string): string {
  const answers = EDGE_ERRORS.map((e) => `      if ($http_x_code = "${e.status}") { return ${e.answer} '${edgeErrorBody(e)}'; }`).join("\n");
  const byStatus = TRAEFIK_ERRORS.map((e) => `      if ($uri = "/${e.status}") { return ${e.answer} '${edgeErrorBody(e)}'; }`).join("\n");
  return `# Generated by components/edge/error-pages.ts; do not edit.
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 512; }
http {
  access_log off;
  server_tokens off;
  ${NGINX_TEMP_PATHS}
  # A body sent on with the request is never read: no size of it is refused here.
  client_max_body_size 0;
${publicRouteMap(routes)}
${gatewayRouteMap(host)}
  server {
    listen ${EDGE_ERRORS_PORT};
    default_type application/json;
    location = /healthz {
      return 200 '{"status":"ok"}';
    }
    location / {
${answers}
      if ($http_x_code != "") { return ${UNAVAILABLE.answer} '${edgeErrorBody(UNAVAILABLE)}'; }
      if ($gateway_route) { return ${UNAVAILABLE.answer} '${edgeErrorBody(UNAVAILABLE)}'; }
      return ${NO_ROUTE.answer} '${edgeErrorBody(NO_ROUTE)}';
    }
  }
  server {
    listen ${EDGE_ERRORS_STATUS_PORT};
    default_type application/json;
    location / {
      # The client is told when to retry, as the gateway tells it of its own 502s.
      add_header Retry-After 1 always;
${byStatus}
      return ${UNAVAILABLE.answer} '${edgeErrorBody(UNAVAILABLE)}';
    }
  }
}
`;
}

/** The edge-errors workload: the edge's Nginx image, no credential, reached by the ingress controller only. */
export function errorPagesSpec(image: ContainerImage, routes: readonly Route[], host: string): WorkloadSpec {
  return {
    name: EDGE_ERRORS_WORKLOAD,
    role: "edge",
    kind: "stateless",
    image: image.ref,
    env: {},
    secretEnv: {},
    ports: [
      { name: "http", port: EDGE_ERRORS_PORT },
      { name: "by-status", port: EDGE_ERRORS_STATUS_PORT },
    ],
    volumes: [],
    files: [{ path: "/etc/nginx/nginx.conf", content: errorPagesConfig(routes, host) }],
    liveness: probe({ http: { path: "/healthz", port: EDGE_ERRORS_PORT } }),
    readiness: probe({ http: { path: "/healthz", port: EDGE_ERRORS_PORT } }),
    resources: { cpu: "100m", memory: "32Mi" },
    replicas: 2,
    // The image's own unprivileged user (nginx, 101): an unprivileged port, pid and temp files in /tmp.
    security: { runAsUser: image.user?.uid, dockerUser: image.user?.name, scratchOwnerUid: image.user?.uid, readOnlyRootFilesystem: true, scratchDirs: ["/tmp"] },
    connectsTo: [],
    acceptsFrom: [INGRESS_CONTROLLER],
  };
}
