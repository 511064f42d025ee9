/**
 * ingress-nginx's own refusals (a body over the Ingress's 1 MiB, the gateway unreachable, slow or
 * without a ready pod) were its HTML pages on the prod stack (session 52). The Kubernetes runtime
 * now deploys edge-errors (components/edge/error-pages.ts) and sends those refusals to it with the
 * Ingress's custom-http-errors, default-backend and disable-proxy-intercept-errors annotations.
 * Verified here: the rendered resources of the prod and local-k8s stacks (the controller itself is
 * not run: the local cluster runs Traefik, which reads none of this), and edge-errors' configuration
 * run by the real nginx, as ingress-nginx calls it (X-Code, the original method and URI).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EDGE_ERRORS, EDGE_ERRORS_PORT, isIngressNginxClass } from "../../components/edge/error-pages";
import { startErrorPagesNginx } from "../helpers/edge-nginx";
import { byType, named, runProgram, type ProgramRun } from "../helpers/program";
import { internalNamesIn } from "../hostile/internal-names";

const INGRESS = "kubernetes:networking.k8s.io/v1:Ingress";
const annotationsOf = (run: ProgramRun) => named(run, INGRESS, "nginx-ingress").inputs.metadata.annotations as Record<string, string>;

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
    expect(service.spec.ports.map((p: { port: number }) => p.port)).toEqual([EDGE_ERRORS_PORT]);
    const config = byType(prod, "kubernetes:core/v1:ConfigMap").find((c) => c.inputs.metadata.name?.startsWith("edge-errors"))!.inputs;
    expect(Object.values(config.data as Record<string, string>).join("")).toContain(`if ($http_x_code = "413") { return 413 '`);
    const policy = named(prod, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "edge-errors-netpol").inputs.spec;
    expect(policy.egress).toEqual([]);
    expect(policy.ingress).toHaveLength(1);
    expect(policy.ingress[0].from).toEqual([{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress-nginx" } } }]);
    expect(policy.ingress[0].ports).toEqual([{ protocol: "TCP", port: EDGE_ERRORS_PORT }]);
  });

  it("leaves a Traefik Ingress (the local cluster's) unannotated and deploys no edge-errors", async () => {
    const local = await runProgram("local-k8s");
    expect(Object.keys(annotationsOf(local)).filter((k) => /custom-http-errors|default-backend|intercept/.test(k))).toEqual([]);
    expect(byType(local, "kubernetes:apps/v1:Deployment").map((d) => d.inputs.metadata.name)).not.toContain("edge-errors");
    expect(["nginx", "rke2-ingress-nginx", "traefik", "nginx-internal", "haproxy"].map(isIngressNginxClass)).toEqual([true, true, false, false, false]);
  });
});

describe("edge-errors' configuration, run by the real nginx", () => {
  let nginx: { port: number; stop(): Promise<void> };
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
});
