/**
 * What the real program (index.ts, under mocks) puts in the services' environment from the stack
 * config (session 52): the gateway's TRUST_PROXY_GLOBAL_IPV6 from trustGlobalIPv6Proxies; the
 * variables of trading:serviceSettings, judged across services before anything is created; and
 * PostgreSQL's max_connections, sized to the pools or checked against them.
 */
import { describe, expect, it } from "vitest";
import { entryPoint, catalog, KUBERNETES_REPLICA_POSTGRES_POOL } from "../../catalog";
import { named, runProgram, type RecordedResource } from "../helpers/program";

const CONTAINER = "docker:index/container:Container";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
const STATEFULSET = "kubernetes:apps/v1:StatefulSet";
const JOB = "kubernetes:batch/v1:Job";
const users = catalog.find((s) => s.route === "users")!.name;
const PROGRAM_RUN_TIMEOUT_MS = 300_000;
const gateway = entryPoint(catalog)!.name;

/** Plain (non-secret) variables of a Docker container or a Deployment's first container. */
function plainEnv(r: RecordedResource): Record<string, string> {
  if (r.type === CONTAINER) return Object.fromEntries((r.inputs.envs as string[]).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  const env = r.inputs.spec.template.spec.containers[0].env as { name: string; value?: string }[];
  return Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
}

describe("the gateway's TRUST_PROXY_GLOBAL_IPV6", { timeout: PROGRAM_RUN_TIMEOUT_MS }, () => {
  it("is passed with trustGlobalIPv6Proxies true, beside the global IPv6 TRUST_PROXY it allows, on both runtimes, and to no other service", async () => {
    const k8s = await runProgram("prod", { trustedProxies: "2001:db8:1::/48", trustGlobalIPv6Proxies: "true" });
    expect(plainEnv(named(k8s, DEPLOYMENT, `${gateway}-deployment`))).toMatchObject({ TRUST_PROXY: "2001:db8:1::/48", TRUST_PROXY_GLOBAL_IPV6: "true" });
    for (const s of catalog.filter((s) => !s.entryPoint)) {
      const d = k8s.resources.find((r) => r.type === DEPLOYMENT && r.name === `${s.name}-deployment`);
      if (d) expect(plainEnv(d).TRUST_PROXY_GLOBAL_IPV6, s.name).toBeUndefined();
    }
    const docker = await runProgram("dev", { trustedProxies: "172.28.0.0/24,2001:db8:1::/48", trustGlobalIPv6Proxies: "true" });
    expect(plainEnv(named(docker, CONTAINER, `${gateway}-container`))).toMatchObject({ TRUST_PROXY: "172.28.0.0/24,2001:db8:1::/48", TRUST_PROXY_GLOBAL_IPV6: "true" });
  });

  it("is absent without it (the gateway's default, false, refuses global IPv6 in TRUST_PROXY)", async () => {
    const run = await runProgram("dev");
    expect(plainEnv(named(run, CONTAINER, `${gateway}-container`)).TRUST_PROXY_GLOBAL_IPV6).toBeUndefined();
  });
});

describe("trading:serviceSettings and postgresMaxConnections", { timeout: PROGRAM_RUN_TIMEOUT_MS }, () => {
  it("gives each service the variables the stack sets for it, and no other service", async () => {
    const serviceSettings = JSON.stringify({ [users]: { ACCESS_TOKEN_TTL_S: 600 }, [gateway]: { ACCESS_TOKEN_MAX_AGE_S: 1200 } });
    const k8s = await runProgram("prod", { serviceSettings });
    expect(plainEnv(named(k8s, DEPLOYMENT, `${users}-deployment`))).toMatchObject({ ACCESS_TOKEN_TTL_S: "600" });
    expect(plainEnv(named(k8s, DEPLOYMENT, `${gateway}-deployment`))).toMatchObject({ ACCESS_TOKEN_MAX_AGE_S: "1200" });
    expect(plainEnv(named(k8s, DEPLOYMENT, `${gateway}-deployment`)).ACCESS_TOKEN_TTL_S).toBeUndefined();
    const docker = await runProgram("dev", { serviceSettings });
    expect(plainEnv(named(docker, CONTAINER, `${users}-container`)).ACCESS_TOKEN_TTL_S).toBe("600");
  });

  it("fails the preview, before any resource, with a ConfigError naming both variables and the stack", async () => {
    await expect(runProgram("prod", { serviceSettings: JSON.stringify({ [users]: { ACCESS_TOKEN_TTL_S: 3600 }, [gateway]: { ACCESS_TOKEN_MAX_AGE_S: 1800 } }) })).rejects.toThrow(
      `Invalid configuration trading:serviceSettings on stack 'prod': ${users} ACCESS_TOKEN_TTL_S (3600) must be at most ${gateway} ACCESS_TOKEN_MAX_AGE_S (1800)`,
    );
    await expect(runProgram("dev", { postgresMaxConnections: "100" })).rejects.toThrow(
      /^Invalid configuration trading:postgresMaxConnections on stack 'dev': 100 is below the PostgreSQL connections this stack can open at once, \d+/,
    );
  });

  // Session 53: a Kubernetes stack's refusal names what makes its need there (each autoscaler's most
  // replicas and a rollout's surge pod), not the replicas, which count only above those maxima.
  it("fails a Kubernetes preview whose max_connections is below its autoscalers' maxima, naming the key, the stack and what to lower", async () => {
    await expect(runProgram("prod", { postgresMaxConnections: "300" })).rejects.toThrow(
      /^Invalid configuration trading:postgresMaxConnections on stack 'prod': 300 is below the PostgreSQL connections this stack can open at once, \d+: .*the autoscaler's most replicas and a rollout's surge pod.*or the autoscalers' most replicas \(maxReplicas in catalog\/sizing\.ts/,
    );
  });

  it("starts PostgreSQL with max_connections: what the stack can open at once, or the stack's own", async () => {
    const dev = await runProgram("dev");
    expect(named(dev, CONTAINER, "postgres-container").inputs.command).toEqual(["postgres", "-c", "max_connections=184"]);
    const prod = await runProgram("prod", { postgresMaxConnections: "350" });
    expect(named(prod, STATEFULSET, "postgres-statefulset").inputs.spec.template.spec.containers[0].args).toEqual(["postgres", "-c", "max_connections=350"]);
  });

  // Session 54: at a pool of 10 a replica the autoscalers' maxima opened 951 connections against a
  // PostgreSQL of 1 GiB. A Kubernetes replica's pool is catalog/sizing.ts's, and the server's memory
  // is the stack's postgresMemoryGi, which its max_connections must fit.
  it("gives each horizontally scaled service's Deployment a replica's pool on Kubernetes, the stack's where it sets one, and none on Docker", async () => {
    const scaled = catalog.filter((s) => !s.singleton && [...s.requires, ...s.optional].includes("postgres"));
    const k8s = await runProgram("prod", { serviceSettings: JSON.stringify({ [users]: { POSTGRES_POOL_MAX: 5 } }) });
    for (const s of scaled) {
      expect(plainEnv(named(k8s, DEPLOYMENT, `${s.name}-deployment`)).POSTGRES_POOL_MAX, s.name).toBe(s.name === users ? "5" : String(KUBERNETES_REPLICA_POSTGRES_POOL));
    }
    // A singleton keeps the service's default; the gateway uses no PostgreSQL.
    expect(plainEnv(named(k8s, DEPLOYMENT, "trading-engine-deployment")).POSTGRES_POOL_MAX).toBeUndefined();
    expect(plainEnv(named(k8s, DEPLOYMENT, `${gateway}-deployment`)).POSTGRES_POOL_MAX).toBeUndefined();
    // The migration job takes its service's environment: the pool it is counted with.
    const migration = k8s.resources.find((r) => r.type === JOB && r.name.startsWith("database-service"))!;
    const jobEnv = migration.inputs.spec.template.spec.containers[0].env as { name: string; value?: string }[];
    expect(jobEnv.find((e) => e.name === "POSTGRES_POOL_MAX")?.value).toBe(String(KUBERNETES_REPLICA_POSTGRES_POOL));
    expect(named(k8s, STATEFULSET, "postgres-statefulset").inputs.spec.template.spec.containers[0].resources.limits.memory).toBe("4Gi");
    const docker = await runProgram("dev");
    for (const s of scaled) expect(plainEnv(named(docker, CONTAINER, `${s.name}-container`)).POSTGRES_POOL_MAX, s.name).toBeUndefined();
    expect(named(docker, CONTAINER, "postgres-container").inputs.memory).toBe(4096);
  });

  it("sizes PostgreSQL's memory from postgresMemoryGi, and fails the preview of a stack whose connections outgrow it", async () => {
    const roomy = await runProgram("prod", { postgresMemoryGi: "8" });
    expect(named(roomy, STATEFULSET, "postgres-statefulset").inputs.spec.template.spec.containers[0].resources.limits.memory).toBe("8Gi");
    await expect(runProgram("dev", { postgresMemoryGi: "1" })).rejects.toThrow(
      /^Invalid configuration trading:postgresMemoryGi on stack 'dev': PostgreSQL's max_connections of 184 \(sized to what this stack can open at once: .*\) lets its memory reach 2228 MiB .*above its memory limit of 1 GiB/,
    );
  });
});
