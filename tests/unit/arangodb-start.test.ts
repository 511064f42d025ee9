/**
 * Session 52: the ArangoDB container's start script (components/data/arangodb-start.ts), run with
 * stand-ins for `arango-init-database` and `arangod` that record their environment and arguments.
 * Before, the vendor's entrypoint exported ARANGO_ROOT_PASSWORD into arangod's environment
 * (/proc/<pid>/environ) whenever it was a variable (Kubernetes) and on the first start from the file (Docker).
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { arangoStartScript } from "../../components/data/arangodb-start";
import { named, runProgram } from "../helpers/program";

const PASSWORD = "Arango-root-pw-7Qz9";
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

/** A data directory, a configuration, and the two stand-ins writing `<name>.env` and `<name>.args` next to them. */
function rig(initialised: boolean) {
  const root = mkdtempSync(join(tmpdir(), "arango-start-"));
  dirs.push(root);
  const paths = { dataDir: join(root, "data"), config: join(root, "arangod.conf"), runConfig: join(root, "run.conf") };
  spawnSync("mkdir", ["-p", paths.dataDir, join(root, "bin")]);
  writeFileSync(paths.config, "[server]\nendpoint = tcp://0.0.0.0:8529\n");
  if (initialised) writeFileSync(join(paths.dataDir, "SERVER"), "{}");
  for (const name of ["arango-init-database", "arangod"]) {
    const stub = join(root, "bin", name);
    writeFileSync(stub, `#!/bin/sh\nenv > '${root}/${name}.env'\necho "$@" > '${root}/${name}.args'\n`);
    chmodSync(stub, 0o755);
  }
  writeFileSync(join(root, "pw"), `${PASSWORD}`);
  const run = (env: Record<string, string>) =>
    spawnSync("/bin/sh", ["-c", arangoStartScript(paths)], { env: { PATH: `${join(root, "bin")}:/usr/bin:/bin`, ...env }, encoding: "utf8" });
  const read = (name: string, kind: "env" | "args") => (existsSync(join(root, `${name}.${kind}`)) ? readFileSync(join(root, `${name}.${kind}`), "utf8") : undefined);
  return { root, paths, run, read };
}

describe("the ArangoDB start script", () => {
  it.each([
    ["the file (Docker)", (root: string) => ({ ARANGO_ROOT_PASSWORD_FILE: join(root, "pw") })],
    ["the variable (Kubernetes)", () => ({ ARANGO_ROOT_PASSWORD: PASSWORD })],
  ])("on a first start with %s: root's password to arango-init-database alone, none in arangod's environment", (_, env) => {
    const r = rig(false);
    const out = r.run(env(r.root));
    expect(out.status, out.stderr).toBe(0);
    expect(r.read("arango-init-database", "env")).toContain(`ARANGODB_DEFAULT_ROOT_PASSWORD=${PASSWORD}\n`);
    expect(r.read("arango-init-database", "args")).toBe(`-c ${r.paths.runConfig} --server.rest-server false --log.level error --database.init-database true\n`);
    expect(r.read("arangod", "env")).not.toContain(PASSWORD);
    expect(r.read("arangod", "env")).not.toMatch(/ARANGO_ROOT_PASSWORD/);
    expect(r.read("arangod", "args")).toBe(`--server.authentication=true --config ${r.paths.runConfig}\n`);
    expect(readFileSync(r.paths.runConfig, "utf8")).toContain("endpoint = tcp://0.0.0.0:8529");
  });

  it("on a later start (SERVER present): no initialisation, and still no password in arangod's environment", () => {
    const r = rig(true);
    const out = r.run({ ARANGO_ROOT_PASSWORD: PASSWORD });
    expect(out.status, out.stderr).toBe(0);
    expect(r.read("arango-init-database", "env")).toBeUndefined();
    expect(r.read("arangod", "env")).not.toContain(PASSWORD);
  });

  it("refuses a first start without a password, naming both variables, and never starts arangod", () => {
    const r = rig(false);
    const out = r.run({});
    expect(out.status).toBe(1);
    expect(out.stderr).toContain("neither ARANGO_ROOT_PASSWORD nor ARANGO_ROOT_PASSWORD_FILE gives a password");
    expect(r.read("arangod", "env")).toBeUndefined();
  });
});

describe("the program starts ArangoDB with it", { timeout: 300_000 }, () => {
  it("on Docker (the password a file) and on Kubernetes (a secretKeyRef variable), in place of the image's entrypoint", async () => {
    const docker = await runProgram("dev", { imageSource: "upstream", arangodbEnabled: "true" });
    const c = named(docker, "docker:index/container:Container", "arangodb-container");
    expect(c.inputs.entrypoints).toEqual(["/bin/sh", "-c", arangoStartScript()]);
    expect((c.inputs.envs as string[]).filter((e) => e.startsWith("ARANGO_ROOT_PASSWORD"))).toEqual(["ARANGO_ROOT_PASSWORD_FILE=/run/secrets/arango_root_password"]);
    const k8s = await runProgram("prod");
    const container = named(k8s, "kubernetes:apps/v1:StatefulSet", "arangodb-statefulset").inputs.spec.template.spec.containers[0];
    expect(container.command).toEqual(["/bin/sh", "-c", arangoStartScript()]);
    expect(container.env.find((e: { name: string }) => e.name === "ARANGO_ROOT_PASSWORD").valueFrom.secretKeyRef).toBeDefined();
  });
});
