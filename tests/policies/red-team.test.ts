/**
 * Session 48, red team: resources the pack passed that it should refuse, each failing before its fix.
 * (Case, what happened, the fix: policies/README.md "Red team, session 48".)
 */
import { describe, expect, it } from "vitest";
import { deployment, dockerService, NS } from "./fixtures";
import { runPack, TestResource } from "./run-pack";

const messages = async (policy: string, rs: TestResource[]) => (await runPack(rs, "prod", { only: [policy] })).map((v) => v.message);
const FIX = "Published or guessable credentials must be treated as compromised: generate the value with random.RandomPassword " +
    "(length >= 32) or set it with `pulumi config set --secret`, and on Kubernetes pass it through a Secret.";
const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("no-default-credentials: the guide's literals encoded, weak passwords on a command line", () => {
    it("rejects a guide literal percent-encoded in a URL's password (the client decodes it) and base64 in a ConfigMap's binaryData", async () => {
        const docker = dockerService("api-gateway", { envs: ["DB_URL=postgresql://ai_trading_user:ai%5Ftrading%5Fsecure%5Fpass%5F2024@postgres:5432/ai_trading"] });
        const cm: TestResource = {
            type: "kubernetes:core/v1:ConfigMap", name: "cfg",
            props: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cfg", namespace: NS }, binaryData: { "pw.txt": b64("ai_trading_secure_pass_2024") } },
        };
        expect(await messages("no-default-credentials", [docker, cm])).toEqual([
            `Container "api-gateway-container" has the deployment guide's published default "ai_trading_secure_pass_2024" (percent-encoded in a URL's password) at envs[0]. ${FIX}`,
            `ConfigMap "cfg" has the deployment guide's published default "ai_trading_secure_pass_2024" at binaryData.pw.txt (base64-decoded). ${FIX}`,
        ]);
    });

    it("rejects a weak password given to a credential flag on a command line (--requirepass, --db-password), on both targets", async () => {
        const docker = dockerService("api-gateway", {
            command: ["sh", "-c", "exec redis-server --requirepass 'changeme'"],
            healthcheck: { tests: ["CMD", "probe", "--db-password=postgres"], interval: "10s", timeout: "5s", retries: 3, startPeriod: "15s" },
        });
        const k8s = deployment("api-gateway", 3001, { container: { args: ["--masterauth", "password", "--requirepass", "$(REDIS_PASSWORD)"] } });
        expect(await messages("no-default-credentials", [docker, k8s])).toEqual([
            `Container "api-gateway-container" has a weak, well-known value at command[2] (--requirepass). ${FIX}`,
            `Container "api-gateway-container" has a weak, well-known value at healthcheck.tests[2] (--db-password). ${FIX}`,
            `Deployment "api-gateway-deployment" has a weak, well-known value at container "api-gateway" args[0] (--masterauth). ${FIX}`,
        ]);
        // A strong literal is credentials-from-secret-refs' (Kubernetes), a reference passes both.
        expect(await messages("no-default-credentials", [dockerService("api-gateway", { command: ["redis-server", "--requirepass", "Xk3j9ZqL0pR2mN7vB4cT1yW8"] })])).toEqual([]);
    });
});

describe("credentials-from-secret-refs: a server's password directive spelt as a flag", () => {
    it("rejects a literal --requirepass or --masterauth in command/args; a $(VAR) reference passes", async () => {
        const k8s = deployment("api-gateway", 3001, { container: { command: ["redis-server", "--requirepass", "Xk3j9ZqL0pR2mN7vB4cT1yW8"], args: ["--masterauth=Xk3j9ZqL0pR2mN7vB4cT1yW8"] } });
        const ok = deployment("api-gateway", 3001, { container: { command: ["redis-server", "--requirepass", "$(REDIS_PASSWORD)"] } });
        const fix = (m: string) => m.split(". Literal")[0];
        expect((await messages("credentials-from-secret-refs", [k8s, ok])).map(fix)).toEqual([
            `Deployment "api-gateway-deployment": container "api-gateway" passes a literal credential in command[1] (--requirepass)`,
            `Deployment "api-gateway-deployment": container "api-gateway" passes a literal credential in args[0] (--masterauth)`,
        ]);
    });
});
