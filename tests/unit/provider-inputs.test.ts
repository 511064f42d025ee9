/**
 * Every input the program gives a resource of this repo's own plugins (docker, random) is one the
 * plugin declares, with the declared kind, at any depth; the plugins refuse anything else at
 * preview. The mocks record inputs but accept anything, so without this check a property the
 * plugin lacks (Network.ipamConfigs, once) passes every unit test and breaks `npm run up`.
 */
import { describe, expect, it } from "vitest";
import { inputProblems, providerSchema, ProviderSchema } from "../helpers/provider-schema";
import { ProgramRun, runProgram } from "../helpers/program";

const schemas: Record<string, ProviderSchema> = { docker: providerSchema("docker"), random: providerSchema("random") };

function problemsOf(run: ProgramRun): string[] {
  return run.resources.flatMap((r) => {
    const schema = schemas[r.type.split(":")[0]];
    return schema ? inputProblems(schema, r.type, r.inputs).map((p) => `${r.type} ${r.name}: ${p}`) : [];
  });
}

describe("program inputs against this repo's provider plugins", { timeout: 300_000 }, () => {
  it("the dev stack as shipped sets only what the docker and random plugins implement", async () => {
    const run = await runProgram("dev");
    const checked = run.resources.filter((r) => r.type.startsWith("docker:") || r.type.startsWith("random:"));
    expect(checked.length).toBeGreaterThan(30);
    expect(checked.map((r) => r.type)).toContain("docker:index/network:Network");
    expect(problemsOf(run)).toEqual([]);
  });

  it("so does the dev stack with every optional part on and upstream images", async () => {
    const run = await runProgram("dev", { imageSource: "upstream", weaviateEnabled: "true", arangodbEnabled: "true", grafanaEnabled: "true" });
    expect(problemsOf(run)).toEqual([]);
  });

  it("names the resource and the property a plugin lacks, at any depth", () => {
    const docker = providerSchema("docker");
    const network = docker.resources["docker:index/network:Network"];
    const withoutIpam: ProviderSchema = {
      ...docker,
      resources: { ...docker.resources, "docker:index/network:Network": { ...network, inputProperties: { ...network.inputProperties } } },
    };
    delete withoutIpam.resources["docker:index/network:Network"].inputProperties!.ipamConfigs;
    const inputs = { name: "n", driver: "bridge", ipamConfigs: [{ subnet: "172.28.0.0/24" }] };
    expect(inputProblems(docker, "docker:index/network:Network", inputs)).toEqual([]);
    expect(inputProblems(withoutIpam, "docker:index/network:Network", inputs)).toEqual([
      "ipamConfigs: not supported by this repo's pulumi-resource-docker",
    ]);
    expect(
      inputProblems(docker, "docker:index/container:Container", {
        name: "c",
        image: "i",
        uploads: [{ file: "/x", content: "c", sourceHash: "h" }],
        ports: [{ internal: "80" }],
        gpus: "all",
      }),
    ).toEqual([
      "uploads[0].sourceHash: not supported by this repo's pulumi-resource-docker",
      "ports[0].internal: an integer is expected, not \"80\"",
      "gpus: not supported by this repo's pulumi-resource-docker",
    ]);
    expect(inputProblems(docker, "docker:index/network:Network", { driver: "bridge" })).toEqual([
      "name: required by this repo's pulumi-resource-docker",
    ]);
    expect(inputProblems(docker, "docker:index/service:Service", {})).toEqual([
      "docker:index/service:Service is not a resource of this repo's pulumi-resource-docker",
    ]);
  });
});
