/**
 * End to end with the real Pulumi CLI (when scripts/tools/build-pulumi-tools.sh has built it):
 * `pulumi preview --policy-pack policies --policy-pack-config policies/config/<env>.json` on a tiny
 * program whose only resource carries the guide's PostgreSQL password. The language host built by
 * the tools script carries a RunPlugin patch so the CLI can start the Node policy pack
 * (scripts/tools/patches). Skipped when no CLI is available.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, describe, expect, it } from "vitest";
import { findBin, projectDir, root, runCli } from "./cli-tools";

const cli = findBin("pulumi");
const langHost = findBin("pulumi-language-nodejs");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "policy-cli-"));

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function setup(): NodeJS.ProcessEnv {
    return projectDir(work, [
        "const pulumi = require(\"@pulumi/pulumi\");",
        "class P { async create(inputs) { return { id: \"x\", outs: inputs }; } }",
        "new pulumi.dynamic.Resource(new P(), \"postgres-env\", { envs: [\"POSTGRES_PASSWORD=ai_trading_secure_pass_2024\"] });",
    ], [cli!, langHost!]);
}

describe.skipIf(!cli || !langHost)("pulumi preview with the policy pack (real CLI)", () => {
    const env = cli && langHost ? setup() : {};
    const preview = (config: string) => runCli(cli!, [
        "preview", "--stack", "ci", "--non-interactive",
        "--policy-pack", path.join(root, "policies"),
        "--policy-pack-config", path.join(root, "policies", "config", config),
    ], { cwd: work, env, timeoutMs: 240_000 });

    it("prod.json blocks the guide's password; dev.json only reports it", async () => {
        const init = await runCli(cli!, ["stack", "init", "ci", "--non-interactive"], { cwd: work, env });
        expect(init.status, init.stderr).toBe(0);

        const prod = await preview("prod.json");
        const prodOut = prod.stdout + prod.stderr;
        expect(prod.status, prodOut).not.toBe(0);
        expect(prodOut).toContain("[mandatory] [severity: critical]  no-default-credentials");
        expect(prodOut).toContain("has the deployment guide's published default \"ai_trading_secure_pass_2024\" at envs[0]");

        const dev = await preview("dev.json");
        const devOut = dev.stdout + dev.stderr;
        expect(dev.status, devOut).toBe(0);
        expect(devOut).toContain("[advisory] [severity: critical]  no-default-credentials");
    }, 300_000);
});
