/**
 * The CLI with the policy pack on the real program, and the prod manifests rendered without a
 * cluster and validated against the Kubernetes OpenAPI schemas.
 */
import * as fs from "fs";
import * as path from "path";
import { parseAllDocuments } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { validateManifest } from "../helpers/k8s-schema";
import { Pulumi, root, toolsAvailable } from "./cli";

const pack = (stack: "dev" | "prod") => ["--policy-pack", path.join(root, "policies"), "--policy-pack-config", path.join(root, "policies", "config", `${stack}.json`)];

/**
 * A renderYamlTo folder of one CLI run: in the clone's git-ignored rendered/ folder, as the stack config wants
 * (session 65: a folder out of the project, the run's temporary folder included, is refused).
 */
function renderFolder(pulumi: Pulumi, name: string): string {
  return path.join(root, "rendered", path.basename(pulumi.dir), name);
}

/** The run's temporary folder and its rendered manifests. */
function cleanup(pulumi: Pulumi): void {
  fs.rmSync(path.join(root, "rendered", path.basename(pulumi.dir)), { recursive: true, force: true });
  pulumi.cleanup();
}

describe.skipIf(!toolsAvailable())("pulumi preview with the policy pack", () => {
  const pulumi = new Pulumi("preview");
  afterAll(() => cleanup(pulumi));

  it("passes for the shipped dev stack", async () => {
    pulumi.configFile("dev", "dev");
    const dev = await pulumi.stack("dev");
    const r = await dev.run(["preview", ...pack("dev")]);
    expect(r.stdout).not.toMatch(/mandatory/);
  });

  it("passes for the shipped prod stack (manifests rendered, no cluster)", async () => {
    pulumi.configFile("prod", "prod", { renderYamlTo: renderFolder(pulumi, "preview") });
    const prod = await pulumi.stack("prod");
    const r = await prod.run(["preview", ...pack("prod")]);
    expect(r.stdout).not.toMatch(/mandatory/);
  });

  it("fails for the insecure fixture, naming the violated policies", async () => {
    const fixture = path.join(root, "tests", "e2e", "fixtures", "Pulumi.insecure.yaml");
    // LoadBalancer datastores pass the stack config on dev stacks only (session 50): under a dev
    // stack's name the fixture reaches the pack, which prod.json makes block them.
    pulumi.configFile("dev-insecure", fixture, { renderYamlTo: renderFolder(pulumi, "insecure") });
    const insecure = await pulumi.stack("dev-insecure");
    const r = await insecure.run(["preview", ...pack("prod")], { allowFailure: true });
    const text = r.stdout + r.stderr;
    expect(r.status, text.slice(-3000)).not.toBe(0);
    expect(text).toContain("no-public-exposure");
    expect(text).toMatch(/mandatory/);

    // Under any other name the stack config refuses them itself, before the pack, naming the key and the stack;
    // and a floating tag on every stack.
    pulumi.configFile("insecure", fixture, { renderYamlTo: renderFolder(pulumi, "insecure") });
    const named = await pulumi.stack("insecure");
    const exposed = await named.run(["preview", ...pack("prod")], { allowFailure: true });
    expect(exposed.status).not.toBe(0);
    expect(exposed.stdout + exposed.stderr).toContain("Invalid configuration trading:exposeDatastores on stack 'insecure': true gives every datastore a LoadBalancer Service");
    pulumi.configFile("dev-insecure", fixture, { renderYamlTo: renderFolder(pulumi, "insecure"), redisImage: "redis:stable" });
    const floating = await insecure.run(["preview", ...pack("prod")], { allowFailure: true });
    const refused = floating.stdout + floating.stderr;
    expect(floating.status, refused.slice(-3000)).not.toBe(0);
    expect(refused).toContain("Invalid configuration trading:redisImage on stack 'dev-insecure': 'redis:stable' uses the floating tag \"stable\"");
  });
});

describe.skipIf(!toolsAvailable())("prod manifests rendered by the Kubernetes provider", () => {
  const pulumi = new Pulumi("render");
  const out = renderFolder(pulumi, "prod");
  afterAll(() => cleanup(pulumi));

  it("render without a cluster and validate against the Kubernetes OpenAPI schemas", async () => {
    pulumi.configFile("prod", "prod", { renderYamlTo: out });
    const prod = await pulumi.stack("prod");
    await prod.run(["up", "--yes", "--skip-preview"]);
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.ya?ml$/.test(e.name)) files.push(p);
      }
    };
    walk(out);
    expect(files.length).toBeGreaterThan(50);
    const objects = files.flatMap((f) => parseAllDocuments(fs.readFileSync(f, "utf8")).map((d) => d.toJSON())).filter(Boolean);
    const kinds = new Set(objects.map((o) => o.kind));
    for (const k of ["Namespace", "StatefulSet", "Deployment", "Service", "NetworkPolicy", "Ingress", "CronJob", "Job", "PodDisruptionBudget", "Secret"]) {
      expect(kinds, k).toContain(k);
    }
    const problems = (await Promise.all(objects.map(validateManifest))).flat();
    expect(problems).toEqual([]);
    await prod.run(["destroy", "--yes", "--skip-preview"]);
  });
});
