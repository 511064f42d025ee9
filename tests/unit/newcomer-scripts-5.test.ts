/**
 * Session 50's newcomer hunt (round 5), `npm run up` and `npm test` read as a newcomer on a fresh
 * clone would run them. In the sandbox of tests/helpers/newcomer-sandbox.ts: the real scripts in a
 * copy whose path holds a space, fakes first on PATH, a cache of the test's own.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { clone, copy, dir, fake, run, script, upUntilTheBuilds, useNewcomerSandbox } from "../helpers/newcomer-sandbox";

useNewcomerSandbox();

/** A stack of the clone made from a shipped one (the operator's `cp Pulumi.prod.yaml Pulumi.staging.yaml`). */
function stackLike(stack: string, shipped: string): void {
  copy(`Pulumi.${shipped}.yaml`);
  writeFileSync(join(clone, `Pulumi.${stack}.yaml`), readFileSync(join(clone, `Pulumi.${shipped}.yaml`)));
}

describe("npm run up and the policy pack's configuration", () => {
  it("a stack with no policies/config/<stack>.json stops before anything is built, naming the file to write (before: deployed with no pack at all)", async () => {
    upUntilTheBuilds();
    stackLike("staging", "prod");
    const r = await run(["scripts/up.sh", "staging"]);
    expect(r.status, r.err).toBe(2);
    expect(r.err).toContain(
      "[up] stack staging has no policy pack configuration (policies/config/staging.json), and a stack is deployed only with the pack enforced: copy the one it is closest to (cp policies/config/prod.json policies/config/staging.json) and review it, or name a development stack dev-<name> (dev.json)",
    );
    expect(r.err).not.toContain("[up] Docker engine");
    expect(existsSync(join(dir, "images-started"))).toBe(false);
    expect(existsSync(join(dir, "toolchain-started"))).toBe(false);
  });

  it("a development stack (dev-*) without its own runs under dev.json, saying so; a stack with its own file uses it", async () => {
    upUntilTheBuilds();
    script("scripts/lib/check-host-ports.sh", "exit 0");
    stackLike("dev-alice", "dev");
    const r = await run(["scripts/up.sh", "dev-alice"]);
    expect(r.err).toContain("[up] stack dev-alice has no policies/config/dev-alice.json: the policy pack runs with dev.json, a development stack's");
    expect(existsSync(join(dir, "toolchain-started")), r.err).toBe(true); // it went on, to the (faked, failing) toolchain
    const of = (stack: string) => run(["-c", `source scripts/lib/stack-config.sh && policy_config_of ${stack}`]);
    for (const stack of ["dev", "prod", "local-k8s"]) expect((await of(stack)).out.trim(), stack).toBe(`policies/config/${stack}.json`);
    expect((await of("dev-alice")).out.trim()).toBe("policies/config/dev.json");
    expect((await of("developer")).status).toBe(2);
  });
});

describe("Node's version, before anything is installed", () => {
  it("up and test stop at once on Debian 12's own Node 18 or with no node, naming what they found (before: npm ci warned and the run went on)", async () => {
    upUntilTheBuilds();
    copy("Pulumi.dev.yaml", "package.json", "scripts/test.sh", "scripts/lib/steps.sh");
    script("scripts/deps/install-test-deps.sh", `touch "${join(dir, "deps-started")}"; exit 1`);
    fake("node", 'if [ "$1" = -p ]; then echo 18.19.0; exit 0; fi; exit 1');
    for (const [cmd, me] of [["scripts/up.sh", "up"], ["scripts/test.sh", "test"]]) {
      const r = await run([cmd]);
      expect(r.status, r.err).toBe(2);
      expect(r.err).toMatch(new RegExp(`\\[${me}\\] Node 20 or later is needed, and the node on PATH \\(.*/fakes/node\\) is 18\\.19\\.0 \\(Debian 12's own nodejs is 18\\)`));
    }
    fake("node", "exit 127");
    expect((await run(["scripts/up.sh"])).err).toContain("[up] no node on PATH: Node 20 or later is needed (README, Prerequisites)");
    expect(existsSync(join(dir, "deps-started"))).toBe(false);
    expect(existsSync(join(dir, "toolchain-started"))).toBe(false);
    fake("node", 'if [ "$1" = -p ]; then echo 20.20.2; exit 0; fi; exec /usr/bin/node "$@"');
    const ok = await run(["-c", "source scripts/lib/node-version.sh && require_node && echo fine"]);
    expect(ok.out.trim(), ok.err).toBe("fine");
  });
});
