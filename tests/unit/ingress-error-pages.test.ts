/**
 * ingress-nginx's own refusals (a body over the Ingress's 1 MiB, the gateway unreachable, slow or
 * without a ready pod) were its HTML pages on the prod stack (session 52). The Kubernetes runtime
 * now deploys edge-errors (components/edge/error-pages.ts) and sends those refusals to it with the
 * Ingress's custom-http-errors, default-backend and disable-proxy-intercept-errors annotations; its
 * refusals before location selection need the controller's own settings (session 53). Traefik's (the local cluster's: 404 for a URL no router takes, the gateway's routers
 * dropped while it has no ready pod, 502 from a pod that refused) were plain text: a catch-all Ingress
 * to edge-errors and, where Traefik reads Middlewares, its errors middleware on the Ingress's routers.
 * Verified here: the rendered resources of the prod and local-k8s stacks (no controller is run here),
 * and edge-errors' configuration run by the real nginx, as ingress-nginx and Traefik call it (X-Code
 * and the original URI; the original request on the catch-all; `/<status>` on the status port).
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EDGE_ERRORS,
  EDGE_ERRORS_PORT,
  EDGE_ERRORS_STATUS_PORT,
  INGRESS_NGINX_CONTROLLER_DATA,
  ingressNginxDefaultBackendFlag,
  isIngressNginxClass,
  isTraefikClass,
  NO_ROUTE,
  TRAEFIK_ERRORS,
} from "../../components/edge/error-pages";
import { startErrorPagesNginx } from "../helpers/edge-nginx";
import { byType, named, runProgram, type ProgramRun } from "../helpers/program";
import { internalNamesIn } from "../hostile/internal-names";

const INGRESS = "kubernetes:networking.k8s.io/v1:Ingress";
const annotationsOf = (run: ProgramRun) => named(run, INGRESS, "nginx-ingress").inputs.metadata.annotations as Record<string, string>;
const MIDDLEWARE = "kubernetes:traefik.io/v1alpha1:Middleware";

describe("the prod stack's Ingress sends ingress-nginx's own refusals to edge-errors", { timeout: 300_000 }, () => {
  let prod: ProgramRun;
  beforeAll(async () => {
    prod = await runProgram("prod");
  }, 300_000);

  it("annotates the Ingress: the codes Nginx produces itself, the default backend, and the gateway's own error answers passed on", () => {
    expect(annotationsOf(prod)).toMatchObject({
      "nginx.ingress.kubernetes.io/custom-http-errors": "400,494,414,413,502,503,504",
      "nginx.ingress.kubernetes.io/default-backend": "edge-errors",
      "nginx.ingress.kubernetes.io/disable-proxy-intercept-errors": "true",
    });
  });

  it("deploys edge-errors: two replicas of the edge's Nginx, its configuration mounted, a Service on 8080, reached by the ingress controller only and reaching nothing", () => {
    const deployment = named(prod, "kubernetes:apps/v1:Deployment", "edge-errors-deployment").inputs;
    expect([deployment.metadata.name, deployment.spec.replicas]).toEqual(["edge-errors", 2]);
    const container = deployment.spec.template.spec.containers[0];
    expect(container.image).toMatch(/nginx/);
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsNonRoot: true, runAsUser: 101 });
    const service = byType(prod, "kubernetes:core/v1:Service").find((s) => s.inputs.metadata.name === "edge-errors")!.inputs;
    // The first port is ingress-nginx's default backend's; the second Traefik's errors middleware's.
    expect(service.spec.ports.map((p: { port: number }) => p.port)).toEqual([EDGE_ERRORS_PORT, EDGE_ERRORS_STATUS_PORT]);
    const config = byType(prod, "kubernetes:core/v1:ConfigMap").find((c) => c.inputs.metadata.name?.startsWith("edge-errors"))!.inputs;
    expect(Object.values(config.data as Record<string, string>).join("")).toContain(`if ($http_x_code = "413") { return 413 '`);
    // The platform's host: a request without X-Code for another (ingress-nginx's default server) is a 404 whatever its path.
    expect(Object.values(config.data as Record<string, string>).join("")).toMatch(/map \$host \$platform_host \{\n\s+default 0;\n\s+"[a-z0-9.-]+" 1;/);
    const policy = named(prod, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "edge-errors-netpol").inputs.spec;
    expect(policy.egress).toEqual([]);
    expect(policy.ingress).toHaveLength(1);
    expect(policy.ingress[0].from).toEqual([{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } } }]);
    expect(policy.ingress[0].ports).toEqual([{ protocol: "TCP", port: EDGE_ERRORS_PORT }, { protocol: "TCP", port: EDGE_ERRORS_STATUS_PORT }]);
    // No Traefik object on an ingress-nginx stack.
    expect(byType(prod, MIDDLEWARE)).toEqual([]);
    expect(byType(prod, INGRESS).map((i) => i.inputs.metadata.name)).toEqual(["ai-trading"]);
  });

  it("the controller's own settings for its refusals before location selection: ConfigMap keys and the default backend flag (set where the controller is installed)", () => {
    expect(INGRESS_NGINX_CONTROLLER_DATA).toEqual({ "custom-http-errors": "400,494,414", "disable-proxy-intercept-errors": "true" });
    expect(ingressNginxDefaultBackendFlag("ai-trading")).toBe("--default-backend-service=ai-trading/edge-errors");
  });

  it("no ingress-nginx annotation on a Traefik Ingress; another controller's class gets no edge-errors", () => {
    expect(["nginx", "rke2-ingress-nginx", "traefik", "nginx-internal", "haproxy"].map(isIngressNginxClass)).toEqual([true, true, false, false, false]);
    expect(["traefik", "rke2-traefik", "traefik-internal", "nginx"].map(isTraefikClass)).toEqual([true, true, false, false]);
  });
});

describe("the local cluster's Traefik: a catch-all Ingress to edge-errors, the errors middleware where Traefik reads Middlewares", { timeout: 300_000 }, () => {
  let local: ProgramRun;
  beforeAll(async () => {
    local = await runProgram("local-k8s");
  }, 300_000);

  it("deploys edge-errors and a catch-all Ingress (`/` on the platform's host, TLS: Traefik's lowest-priority router there, and `/` on any host: local-k8s' trading:edgeErrorsAnyHost) to its first port; no middleware unless asked", () => {
    expect(Object.keys(annotationsOf(local)).filter((k) => /custom-http-errors|default-backend|intercept|router\.middlewares/.test(k))).toEqual([]);
    expect(byType(local, "kubernetes:apps/v1:Deployment").map((d) => d.inputs.metadata.name)).toContain("edge-errors");
    const catchAll = named(local, INGRESS, "nginx-catch-all-ingress").inputs;
    expect(catchAll.metadata.name).toBe("ai-trading-catch-all");
    const toEdgeErrors = { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "edge-errors", port: { number: EDGE_ERRORS_PORT } } } }] };
    expect(catchAll.spec).toEqual({
      ingressClassName: "traefik",
      tls: [{ hosts: ["trading.local-k8s.test"], secretName: "ai-trading-tls" }],
      rules: [{ host: "trading.local-k8s.test", http: toEdgeErrors }, { http: toEdgeErrors }],
    });
    expect(byType(local, MIDDLEWARE)).toEqual([]);
    // Reached by the controller's namespace only.
    const policy = named(local, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "edge-errors-netpol").inputs.spec;
    expect(policy.ingress[0].from).toEqual([{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "traefik" } } }]);
  });

  // Session 54: the host-less rule is the stack's choice (a controller of the platform's own), off by default, Traefik only.
  it("trading:edgeErrorsAnyHost off: the catch-all takes the platform's host only; on with another class: a config error naming key and stack", async () => {
    const run = await runProgram("local-k8s", { edgeErrorsAnyHost: "false" });
    expect(named(run, INGRESS, "nginx-catch-all-ingress").inputs.spec.rules.map((r: { host?: string }) => r.host)).toEqual(["trading.local-k8s.test"]);
    await expect(runProgram("prod", { edgeErrorsAnyHost: "true" })).rejects.toThrow(/trading:edgeErrorsAnyHost on stack 'prod': is read with a Traefik ingress class only/);
    await expect(runProgram("local-k8s", { edgeErrorsAnyHost: "yes" })).rejects.toThrow(/trading:edgeErrorsAnyHost on stack 'local-k8s'/);
  });

  it("with trading:traefikMiddlewares the Ingress's routers carry the errors middleware: Traefik's 502 to edge-errors' status port", async () => {
    const run = await runProgram("local-k8s", { traefikMiddlewares: "true" });
    const middleware = named(run, MIDDLEWARE, "nginx-errors-middleware").inputs;
    expect(middleware.metadata).toMatchObject({ name: "edge-errors", namespace: "ai-trading" });
    expect(middleware.spec).toEqual({ errors: { status: ["502"], service: { name: "edge-errors", port: EDGE_ERRORS_STATUS_PORT }, query: "/{status}" } });
    expect(annotationsOf(run)["traefik.ingress.kubernetes.io/router.middlewares"]).toBe("ai-trading-edge-errors@kubernetescrd");
    // The catch-all sends to edge-errors itself: no middleware there.
    expect(Object.keys(named(run, INGRESS, "nginx-catch-all-ingress").inputs.metadata.annotations)).not.toContain("traefik.ingress.kubernetes.io/router.middlewares");
    await expect(runProgram("prod", { traefikMiddlewares: "true" })).rejects.toThrow(/trading:traefikMiddlewares.*Traefik ingress class only/);
  });
});

describe("edge-errors' configuration, run by the real nginx", () => {
  let nginx: { port: number; statusPort: number; stop(): Promise<void> };
  beforeAll(async () => {
    nginx = await startErrorPagesNginx();
  }, 60_000);
  afterAll(() => nginx?.stop());

  const send = async (method: string, headers: Record<string, string>, body?: string) => {
    const r = await fetch(`http://127.0.0.1:${nginx.port}/api/orders/x?y=1`, { method, headers, body });
    return { status: r.status, type: r.headers.get("content-type"), json: (await r.json()) as { error: { code: string; message: string; field?: string } } };
  };

  it("answers each X-Code ingress-nginx sends with its status and the platform's error body, naming nothing internal", async () => {
    for (const e of EDGE_ERRORS) {
      for (const method of ["GET", "POST", "DELETE"]) {
        const r = await send(method, { "x-code": String(e.status), "x-original-uri": "/api/orders/x" }, method === "POST" ? "x".repeat(2_000_000) : undefined);
        expect([r.status, r.type, r.json.error.code, r.json.error.field], `${method} ${e.status}`).toEqual([e.answer, "application/json", e.code, e.field]);
        expect(internalNamesIn(r.json.error.message)).toEqual([]);
      }
    }
  });

  it("answers a request without X-Code (the gateway's Service had no ready pod) 503 in the same shape, and one with a code it does not list 503 too", async () => {
    for (const headers of [{}, { "x-code": "418" }, { "x-code": "4130" }] as Record<string, string>[]) {
      const r = await send("GET", headers);
      expect([r.status, r.json.error.code], JSON.stringify(headers)).toEqual([503, "UPSTREAM_UNAVAILABLE"]);
    }
  });

  it("answers a request without X-Code by its path (Traefik's catch-all, ingress-nginx's default server): a public route's 503, any other URL 404", async () => {
    const at = async (path: string) => {
      const r = await fetch(`http://127.0.0.1:${nginx.port}${path}`, { method: "POST", body: "{}" });
      const json = (await r.json()) as { error: { code: string; field?: string; message: string } };
      expect(internalNamesIn(json.error.message)).toEqual([]);
      return [r.status, r.headers.get("content-type"), json.error.code, json.error.field ?? null];
    };
    const gatewayDown = [503, "application/json", "UPSTREAM_UNAVAILABLE", null];
    const noRoute = [NO_ROUTE.answer, "application/json", NO_ROUTE.code, "url"];
    for (const path of ["/api/orders", "/api/orders/", "/api/orders/x?y=1", "/api/health", "/api/docs/", "/api/ai-chains/chains"]) expect(await at(path), path).toEqual(gatewayDown);
    for (const path of ["/", "/api", "/api/", "/api/ordersx", "/api/health/x", "/api/healthz", "/internal/openapi.json", "/502", "/.env"]) expect(await at(path), path).toEqual(noRoute);
  });

  it("answers a request without X-Code for a host not the platform's 404 naming url, whatever its path (ingress-nginx's default server takes every host no Ingress names)", async () => {
    // fetch sends the Host of its URL: node:http sends the one given.
    const as = (host: string, path: string) =>
      new Promise<[number | undefined, string, string | null]>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port: nginx.port, path, method: "GET", headers: { host } }, (res) => {
          let text = "";
          res.setEncoding("utf8").on("data", (c: string) => (text += c)).on("end", () => {
            const json = JSON.parse(text) as { error: { code: string; field?: string; message: string } };
            expect(internalNamesIn(json.error.message)).toEqual([]);
            resolve([res.statusCode, json.error.code, json.error.field ?? null]);
          });
        });
        req.on("error", reject).end();
      });
    const noRoute = [NO_ROUTE.answer, NO_ROUTE.code, "url"];
    for (const host of ["other.example", "127.0.0.2", "x.127.0.0.1"]) {
      for (const path of ["/api/orders/", "/api/orders/x?y=1", "/api/health", "/", "/.env"]) expect(await as(host, path), `${host}${path}`).toEqual(noRoute);
    }
    // The platform's host with a port too: its public route a 503, as above.
    for (const host of ["127.0.0.1:8443", "127.0.0.1"]) expect(await as(host, "/api/orders/"), host).toEqual([503, "UPSTREAM_UNAVAILABLE", null]);
    // ingress-nginx's X-Code comes first, whatever the host.
    const coded = await fetch(`http://127.0.0.1:${nginx.port}/api/orders/`, { headers: { "x-code": "504" } });
    expect(coded.status).toBe(504);
    await coded.arrayBuffer();
  });

  it("answers Traefik's errors middleware on its status port: the status in the path, with a Retry-After; anything else 503", async () => {
    for (const e of TRAEFIK_ERRORS) {
      const r = await fetch(`http://127.0.0.1:${nginx.statusPort}/${e.status}`, { headers: { authorization: "Bearer x", "x-forwarded-for": "203.0.113.9" } });
      const json = (await r.json()) as { error: { code: string; message: string } };
      expect([r.status, r.headers.get("content-type"), r.headers.get("retry-after"), json.error.code]).toEqual([e.answer, "application/json", "1", e.code]);
      expect(internalNamesIn(json.error.message)).toEqual([]);
    }
    const other = await fetch(`http://127.0.0.1:${nginx.statusPort}/404`);
    expect([other.status, ((await other.json()) as { error: { code: string } }).error.code]).toEqual([503, "UPSTREAM_UNAVAILABLE"]);
  });
});
