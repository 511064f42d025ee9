/**
 * What the real program (index.ts, under mocks) puts in the services' environment from the stack
 * config (session 52): the gateway's TRUST_PROXY_GLOBAL_IPV6 from trustGlobalIPv6Proxies.
 */
import { describe, expect, it } from "vitest";
import { entryPoint, catalog } from "../../catalog";
import { named, runProgram, type RecordedResource } from "../helpers/program";

const CONTAINER = "docker:index/container:Container";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
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
