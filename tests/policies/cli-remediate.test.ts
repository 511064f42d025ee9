/**
 * Remediation through the real Pulumi CLI (when scripts/tools/build-pulumi-tools.sh has built the CLI,
 * the Node language host and the Kubernetes provider): `pulumi up --policy-pack policies` with the
 * four remediable policies at enforcement level "remediate", on a Deployment that lacks every fix.
 * The Kubernetes provider renders YAML instead of calling a cluster (renderYamlToDirectory), so the
 * test reads what would have been applied. Skipped when a binary is missing.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { findBin, projectDir, root, runCli } from "./cli-tools";

const cli = findBin("pulumi");
const langHost = findBin("pulumi-language-nodejs");
const k8sPlugin = findBin("pulumi-resource-kubernetes");
const work = fs.mkdtempSync(path.join(os.tmpdir(), "policy-remediate-"));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const REMEDIABLE = ["drop-all-capabilities", "no-privilege-escalation", "automount-service-account-token", "read-only-root-filesystem"];

describe.skipIf(!cli || !langHost || !k8sPlugin)("pulumi up in remediate mode (real CLI, Kubernetes provider rendering YAML)", () => {
    it("the rendered Deployment carries every mechanical fix, and the same policies then pass", async () => {
        const rendered = path.join(work, "rendered");
        const env = projectDir(work, [
            "const k8s = require(\"@pulumi/kubernetes\");",
            `const provider = new k8s.Provider("render", { renderYamlToDirectory: ${JSON.stringify(rendered)} });`,
            "const labels = { \"trading.io/workload\": \"api-gateway\", \"trading.io/role\": \"service\" };",
            "new k8s.apps.v1.Deployment(\"api-gateway-deployment\", {",
            "  metadata: { name: \"api-gateway\", namespace: \"ai-trading\", labels },",
            "  spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: {",
            "    containers: [{ name: \"api-gateway\", image: \"registry.example.com/api-gateway:1.0.0\", securityContext: { runAsNonRoot: true, runAsUser: 10001 } }],",
            "  } } },",
            "}, { provider });",
        ], [cli!, langHost!, k8sPlugin!]);
        const config = path.join(work, "remediate.json");
        fs.writeFileSync(config, JSON.stringify({ all: "disabled", ...Object.fromEntries(REMEDIABLE.map((n) => [n, "remediate"])) }));
        const init = await runCli(cli!, ["stack", "init", "ci", "--non-interactive"], { cwd: work, env });
        expect(init.status, init.stderr).toBe(0);
        const up = await runCli(cli!, ["up", "--yes", "--stack", "ci", "--non-interactive", "--policy-pack", path.join(root, "policies"), "--policy-pack-config", config],
            { cwd: work, env, timeoutMs: 600_000 });
        const out = up.stdout + up.stderr;
        expect(up.status, out).toBe(0);
        for (const name of REMEDIABLE) expect(out, name).toContain(name);
        const files = fs.readdirSync(path.join(rendered, "1-manifest"));
        const deployment = parse(fs.readFileSync(path.join(rendered, "1-manifest", files.find((f) => f.includes("deployment"))!), "utf8"));
        const pod = deployment.spec.template.spec;
        expect(pod.automountServiceAccountToken).toBe(false);
        expect(pod.securityContext.seccompProfile).toEqual({ type: "RuntimeDefault" });
        expect(pod.containers[0].securityContext).toMatchObject({
            allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: 10001,
        });
    }, 700_000);
});
