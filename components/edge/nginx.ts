/**
 * The public edge. On Docker an Nginx container terminates TLS and forwards the catalog's routes
 * to the API gateway; plain HTTP only redirects. On Kubernetes the same routes become an Ingress
 * with TLS (cert-manager issuer or an existing secret) and a forced HTTPS redirect.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { entryPoint, ServiceDefinition } from "../../catalog";
import { KubernetesRuntime } from "../runtime/kubernetes";
import { EDGE } from "../topology";
import { DeployedWorkload, probe, Runtime } from "../workload";

/** Unprivileged ports inside the container: Nginx runs as a normal user with no capabilities. */
export const NGINX_HTTP_PORT = 8080;
export const NGINX_HTTPS_PORT = 8443;
export const TLS_DIR = "/etc/nginx/tls";

export interface Route {
  /** Public path prefix, e.g. "/api/users/". */
  path: string;
  service: string;
}

/** Public routes: every routed catalog service behind the entry point, plus its fleet health view. */
export function publicRoutes(services: readonly ServiceDefinition[]): Route[] {
  const entry = entryPoint(services);
  if (!entry) return [];
  const routes = services
    .filter((s) => s.route !== null)
    .map((s) => ({ path: `/api/${s.route}/`, service: s.name }))
    .sort((a, b) => a.path.localeCompare(b.path));
  return [{ path: "/api/health", service: entry.name }, ...routes];
}

export interface NginxConfigArgs {
  services: readonly ServiceDefinition[];
  gateway: { host: string; port: number };
  /** Port users reach HTTPS on (for the redirect), e.g. 8443 on a developer machine or 443. */
  publicHttpsPort: number;
  serverName: string;
}

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
  access_log /dev/stdout;
  server_tokens off;
  client_body_temp_path /tmp/client_body;
  proxy_temp_path /tmp/proxy;
  fastcgi_temp_path /tmp/fastcgi;
  uwsgi_temp_path /tmp/uwsgi;
  scgi_temp_path /tmp/scgi;
  client_max_body_size 1m;
  proxy_connect_timeout 5s;
  proxy_read_timeout 30s;
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
  gateway: { host: string; port: number };
  /** Docker: Nginx image and the host ports (bound to 127.0.0.1). */
  image?: string;
  /** Docker: user the Nginx image runs as (www-data, uid 33, in the Debian image; nginx, 101, upstream). */
  dockerUser?: { name: string; uid: number };
  httpPort?: number;
  httpsPort?: number;
  /** Optional certificate and key from config secrets; without them the image self-signs. */
  tls?: { cert: pulumi.Output<string>; key: pulumi.Output<string> };
  host: string;
  /** Kubernetes: ingress class, TLS secret or cert-manager issuer. */
  ingressClass?: string;
  tlsSecretName?: string;
  certIssuer?: string;
  connectsTo: string[];
  dependsOn: pulumi.Resource[];
}

export class Edge extends pulumi.ComponentResource {
  readonly url: string;
  readonly workload?: DeployedWorkload;
  readonly ingress?: k8s.networking.v1.Ingress;

  constructor(name: string, args: EdgeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("trading:edge:Nginx", name, {}, opts);
    if (args.runtime instanceof KubernetesRuntime) {
      if (!args.tlsSecretName && !args.certIssuer) {
        throw new pulumi.ResourceError("the Ingress needs TLS: set certIssuer or tlsSecretName", this);
      }
      const routes = publicRoutes(args.services);
      const tlsSecretName = args.tlsSecretName ?? "ai-trading-tls";
      // A certificate from the stack's secrets becomes the Ingress's TLS secret (clusters without
      // cert-manager, e.g. the local one of scripts/cluster/); otherwise the secret exists or
      // cert-manager's ingress-shim issues it.
      const tlsSecret = args.tls
        ? new k8s.core.v1.Secret(
            `${name}-tls`,
            {
              metadata: { name: tlsSecretName, namespace: args.runtime.namespace, labels: { "trading.io/role": "edge", "trading.io/workload": "ingress" } },
              type: "kubernetes.io/tls",
              stringData: { "tls.crt": args.tls.cert, "tls.key": args.tls.key },
            },
            { ...args.runtime.resourceOptions(this), additionalSecretOutputs: ["data", "stringData"] },
          )
        : undefined;
      this.ingress = new k8s.networking.v1.Ingress(
        `${name}-ingress`,
        {
          metadata: {
            name: "ai-trading",
            namespace: args.runtime.namespace,
            labels: { "trading.io/role": "edge", "trading.io/workload": "ingress" },
            annotations: {
              "nginx.ingress.kubernetes.io/ssl-redirect": "true",
              "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
              "nginx.ingress.kubernetes.io/proxy-body-size": "1m",
              "nginx.ingress.kubernetes.io/configuration-snippet": 'more_set_headers "Strict-Transport-Security: max-age=63072000";',
              ...(args.certIssuer ? { "cert-manager.io/cluster-issuer": args.certIssuer } : {}),
            },
          },
          spec: {
            ingressClassName: args.ingressClass ?? "nginx",
            tls: [{ hosts: [args.host], secretName: tlsSecretName }],
            rules: [
              {
                host: args.host,
                http: {
                  paths: routes.map((r) => ({
                    path: r.path.replace(/\/$/, ""),
                    pathType: r.path.endsWith("/") ? "Prefix" : "Exact",
                    backend: { service: { name: args.gateway.host, port: { number: args.gateway.port } } },
                  })),
                },
              },
            ],
          },
        },
        { ...args.runtime.resourceOptions(this), dependsOn: [...args.dependsOn, ...(tlsSecret ? [tlsSecret] : [])] },
      );
      this.url = `https://${args.host}/api/`;
    } else {
      if (!args.image) throw new pulumi.ResourceError("the Docker edge needs an Nginx image", this);
      const httpsPort = args.httpsPort ?? 8443;
      const files = [
        {
          path: "/etc/nginx/nginx.conf",
          content: nginxConfig({ services: args.services, gateway: args.gateway, publicHttpsPort: httpsPort, serverName: args.host }),
        },
        ...(args.tls
          ? [
              { path: `${TLS_DIR}/tls.crt`, content: args.tls.cert },
              { path: `${TLS_DIR}/tls.key`, content: args.tls.key, secret: true },
            ]
          : []),
      ];
      this.workload = args.runtime.deploy(
        {
          name: EDGE,
          role: "edge",
          kind: "stateless",
          image: args.image,
          env: { TLS_COMMON_NAME: args.host, TLS_DIR },
          secretEnv: {},
          ports: [
            { name: "http", port: NGINX_HTTP_PORT, hostPort: args.httpPort ?? 8080 },
            { name: "https", port: NGINX_HTTPS_PORT, hostPort: httpsPort },
          ],
          volumes: [],
          files,
          liveness: probe({ exec: ["curl", "-fksS", "-o", "/dev/null", `https://127.0.0.1:${NGINX_HTTPS_PORT}/healthz`] }),
          resources: { cpu: "500m", memory: "128Mi" },
          replicas: 1,
          // Without a certificate from config the image self-signs one at start into a scratch dir.
          security: {
            dockerUser: args.dockerUser?.name,
            scratchOwnerUid: args.dockerUser?.uid,
            readOnlyRootFilesystem: true,
            scratchDirs: args.tls ? ["/tmp"] : ["/tmp", TLS_DIR],
          },
          connectsTo: args.connectsTo,
          acceptsFrom: [],
          dependsOn: args.dependsOn,
        },
        this,
      );
      this.url = `https://localhost:${httpsPort}/api/`;
    }
    this.registerOutputs({ url: this.url });
  }
}
