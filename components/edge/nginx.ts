/**
 * The public edge: the catalog's routes to the entry point over HTTPS, plain HTTP only redirecting.
 * The runtime realises it (`runtime.expose`): with an ingress controller (Kubernetes) as an Ingress
 * with TLS from cert-manager or an existing secret; without one (Docker) by running the Nginx
 * workload built here, which terminates TLS with the generated configuration.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { entryPoint, ServiceDefinition } from "../../catalog";
import { EDGE_READ_TIMEOUT_S } from "../../catalog/service-settings";
import type { ContainerImage } from "../../stacks/images";
import { EDGE } from "../topology";
import { DeployedWorkload, probe, Route, Runtime, WorkloadSpec } from "../workload";
import { EDGE_ERRORS, edgeErrorBody, errorPagesSpec, NGINX_TEMP_PATHS } from "./error-pages";

/** Unprivileged ports inside the container: Nginx runs as a normal user with no capabilities. */
export const NGINX_HTTP_PORT = 8080;
export const NGINX_HTTPS_PORT = 8443;
export const TLS_DIR = "/etc/nginx/tls";

export type { Route };

/**
 * The edge's access line format (`log_format edge ...`): no query string, no Referer, no credential
 * header. One source, images/nginx/edge-log-format.conf, which the local image's own nginx.conf
 * includes; written here into the generated configuration (the vendor's image has no such file).
 */
export const EDGE_LOG_FORMAT_FILE = path.join(__dirname, "..", "..", "images", "nginx", "edge-log-format.conf");
export function edgeLogFormat(): string {
  const lines = fs.readFileSync(EDGE_LOG_FORMAT_FILE, "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  if (lines.length !== 1 || !/^log_format edge '[^']*';$/.test(lines[0])) throw new Error(`${EDGE_LOG_FORMAT_FILE} must hold one line: log_format edge '...';`);
  return lines[0];
}

/**
 * Where the gateway serves the merged OpenAPI document and its page (services/src/services/api-gateway/docs.ts).
 * A prefix on both edges: Nginx `location /api/docs/` (and its redirect of `/api/docs`), an Ingress
 * `Prefix` path (an Exact `/api/docs` would leave the page's assets and document unreachable).
 */
export const API_DOCS_PATH = "/api/docs/";

/** Public routes: every routed catalog service behind the entry point, plus its fleet health view and API docs. */
export function publicRoutes(services: readonly ServiceDefinition[]): Route[] {
  const entry = entryPoint(services);
  if (!entry) return [];
  const routes = services
    .filter((s) => s.route !== null)
    .map((s) => ({ path: `/api/${s.route}/`, service: s.name }))
    .sort((a, b) => a.path.localeCompare(b.path));
  // The gateway's own public routes: the fleet's health and the API docs (page, assets, document).
  return [{ path: "/api/health", service: entry.name }, { path: API_DOCS_PATH, service: entry.name }, ...routes];
}

export interface NginxConfigArgs {
  services: readonly ServiceDefinition[];
  gateway: { host: string; port: number };
  /** Port users reach HTTPS on (for the redirect), e.g. 8443 on a developer machine or 443. */
  publicHttpsPort: number;
  serverName: string;
}

/**
 * The Docker edge's nginx.conf. Nginx's own answers each carry the platform's JSON error body
 * (./error-pages.ts EDGE_ERRORS, services/src/kit/errors.ts's shape): 494 is Nginx's "request header
 * too large", answered 431 as the services do.
 */
export function nginxConfig(args: NginxConfigArgs): string {
  const redirectPort = args.publicHttpsPort === 443 ? "" : `:${args.publicHttpsPort}`;
  const locations = publicRoutes(args.services)
    .map((r) =>
      [
        `    location ${r.path === "/api/health" ? "= " : ""}${r.path} {`,
        `      # ${r.service}, through the gateway (authentication and rate limits happen there)`,
        "      proxy_pass http://gateway;",
        "    }",
      ].join("\n"),
    )
    .join("\n");
  return `# Generated from catalog/services.ts by components/edge/nginx.ts; do not edit.
worker_processes auto;
pid /tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  # The access line without the query string, the Referer or any credential header, as the services'
  # own (services/src/kit/probes.ts): images/nginx/edge-log-format.conf, shared with the local image.
  ${edgeLogFormat()}
  access_log /dev/stdout edge;
  server_tokens off;
  ${NGINX_TEMP_PATHS}
  client_max_body_size 1m;
  # A slow client gives up its connection (the defaults, 60 s between reads and 75 s idle, let 1,024
  # dripping clients fill worker_connections); the gateway behind bounds the whole request too.
  client_header_timeout 10s;
  client_body_timeout 10s;
  send_timeout 10s;
  keepalive_timeout 15s;
  proxy_connect_timeout 5s;
  proxy_read_timeout ${EDGE_READ_TIMEOUT_S}s;
  resolver 127.0.0.11 valid=10s ipv6=off;

  upstream gateway {
    server ${args.gateway.host}:${args.gateway.port} max_fails=3 fail_timeout=10s;
    keepalive 32;
  }

  # Plain HTTP only ever redirects.
  server {
    listen ${NGINX_HTTP_PORT} default_server;
    server_name _;
    return 301 https://$host${redirectPort}$request_uri;
  }

  server {
    # 'listen ... http2' rather than 'http2 on': Debian 12 ships nginx 1.22.
    listen ${NGINX_HTTPS_PORT} ssl http2 default_server;
    server_name ${args.serverName};
    ssl_certificate ${TLS_DIR}/tls.crt;
    ssl_certificate_key ${TLS_DIR}/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:TLS:10m;
    # The gateway sends these too (services/src/services/api-gateway/security-headers.ts: the
    # Kubernetes edge adds none): hidden from its answers so each is sent once, and set here for
    # Nginx's own answers as well (redirect, 404, 502).
    proxy_hide_header Strict-Transport-Security;
    proxy_hide_header X-Content-Type-Options;
    proxy_hide_header X-Frame-Options;
    proxy_hide_header Referrer-Policy;
    add_header Strict-Transport-Security "max-age=63072000" always;
    add_header X-Content-Type-Options nosniff always;
    add_header X-Frame-Options DENY always;
    add_header Referrer-Policy no-referrer always;

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Request-Id $request_id;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto https;
    # Identity headers are set by the gateway only; never accept them from clients.
    proxy_set_header X-User-Id "";
    proxy_set_header X-User-Role "";

${locations}

    # Nginx's own refusals (a malformed or duplicated header, a header block, URL or body too large, the
    # gateway unreachable) in the platform's error shape, JSON naming what was refused, not its HTML pages.
${EDGE_ERRORS.map((e) => `    error_page ${e.status} =${e.answer} /_edge/${e.status};`).join("\n")}
${EDGE_ERRORS.map((e) => `    location = /_edge/${e.status} {\n      internal;\n      default_type application/json;\n      return ${e.answer} '${edgeErrorBody(e)}';\n    }`).join("\n")}

    location = /healthz {
      access_log off;
      default_type application/json;
      return 200 '{"status":"ok"}';
    }

    location / {
      default_type application/json;
      return 404 '{"error":{"code":"NOT_FOUND","message":"no such route"}}';
    }
  }
}
`;
}

export interface EdgeArgs {
  runtime: Runtime;
  services: readonly ServiceDefinition[];
  /** The entry point every route goes to. */
  gateway: { host: string; port: number };
  /** Public host name (server name, TLS common name, Ingress host). */
  host: string;
  /** Nginx image of the proxy workload (used where the runtime has no ingress controller); its manifest entry names the user it runs as (stacks/images.ts). */
  image: ContainerImage;
  /** Host ports of the proxy workload (bound to 127.0.0.1). */
  httpPort: number;
  httpsPort: number;
  /** Optional certificate and key from config secrets; without them the proxy self-signs. */
  tls?: { cert: pulumi.Output<string>; key: pulumi.Output<string> };
  connectsTo: string[];
  dependsOn: pulumi.Resource[];
}

/** The Nginx workload that terminates TLS where no ingress controller does. */
export function nginxProxySpec(args: Omit<EdgeArgs, "runtime" | "dependsOn">): WorkloadSpec {
  const files = [
    {
      path: "/etc/nginx/nginx.conf",
      content: nginxConfig({ services: args.services, gateway: args.gateway, publicHttpsPort: args.httpsPort, serverName: args.host }),
    },
    ...(args.tls
      ? [
          { path: `${TLS_DIR}/tls.crt`, content: args.tls.cert },
          { path: `${TLS_DIR}/tls.key`, content: args.tls.key, secret: true },
        ]
      : []),
  ];
  return {
    name: EDGE,
    role: "edge",
    kind: "stateless",
    image: args.image.ref,
    env: { TLS_COMMON_NAME: args.host, TLS_DIR },
    secretEnv: {},
    ports: [
      { name: "http", port: NGINX_HTTP_PORT, hostPort: args.httpPort },
      { name: "https", port: NGINX_HTTPS_PORT, hostPort: args.httpsPort },
    ],
    volumes: [],
    files,
    liveness: probe({ exec: ["curl", "-fksS", "-o", "/dev/null", `https://127.0.0.1:${NGINX_HTTPS_PORT}/healthz`] }),
    resources: { cpu: "500m", memory: "128Mi" },
    replicas: 1,
    // Without a certificate from config the image self-signs one at start into a scratch dir.
    security: {
      dockerUser: args.image.user?.name,
      scratchOwnerUid: args.image.user?.uid,
      readOnlyRootFilesystem: true,
      scratchDirs: args.tls ? ["/tmp"] : ["/tmp", TLS_DIR],
    },
    connectsTo: args.connectsTo,
    acceptsFrom: [],
  };
}

export class Edge extends pulumi.ComponentResource {
  readonly url: string;
  readonly workload?: DeployedWorkload;

  constructor(name: string, args: EdgeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:edge:Nginx", name, {}, opts);
    if (!args.image.user?.name) throw new pulumi.ResourceError(`${name}: the Nginx image ${args.image.ref} names no user to run as (stacks/images.ts)`, this);
    const { runtime, dependsOn, ...proxyArgs } = args;
    const exposed = runtime.expose(
      {
        name,
        routes: publicRoutes(args.services),
        backend: args.gateway,
        host: args.host,
        tls: args.tls,
        proxy: nginxProxySpec(proxyArgs),
        errorPages: errorPagesSpec(args.image, publicRoutes(args.services), args.host),
        dependsOn,
      },
      this,
    );
    this.url = exposed.url;
    this.workload = exposed.workload;
    this.registerOutputs({ url: this.url });
  }
}
