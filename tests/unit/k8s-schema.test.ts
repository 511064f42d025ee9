/** Every Kubernetes object of the prod program, checked against the Kubernetes OpenAPI schemas. */
import { describe, expect, it } from "vitest";
import { validateManifest } from "../helpers/k8s-schema";
import { runProgram } from "../helpers/program";

describe("prod manifests against the Kubernetes OpenAPI schemas", { timeout: 300_000 }, () => {
  it("are all valid", async () => {
    const run = await runProgram("prod");
    const objects = run.resources.filter((r) => r.type.startsWith("kubernetes:")).map((r) => r.inputs);
    expect(objects.length).toBeGreaterThan(50);
    const problems = (await Promise.all(objects.map(validateManifest))).flat();
    expect(problems).toEqual([]);
  });

  it("catches a malformed object", async () => {
    const problems = await validateManifest({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "broken" },
      spec: { replicas: "two", selector: {}, template: {} },
    } as never);
    expect(problems).toHaveLength(1);
    expect(problems[0].message).toMatch(/replicas/);
  });
});
