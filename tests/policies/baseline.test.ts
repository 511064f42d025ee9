import { describe, expect, it } from "vitest";
import { devStack, prodStack } from "./fixtures";
import { runPack, summary } from "./run-pack";

// allowed-image-registries is the one policy whose verdict depends on which stack an image belongs
// to: each config file allows its own stack's registries, so the other stack's images are reported.
describe("compliant fixtures", () => {
    it("the dev (Docker) stack passes under dev.json; under prod.json only the prod-only backup rule and the local image fire", async () => {
        expect(await runPack(devStack(), "dev")).toEqual([]);
        // The services image's local name (localhost/ai-trading/services) is not prod's registry.
        expect(summary(await runPack(devStack(), "prod"))).toEqual(["allowed-image-registries api-gateway-container", "datastore-backups postgres-container"]);
    });
    it("the prod (Kubernetes) stack passes under prod.json; under dev.json only its registry is reported (advisory)", async () => {
        expect(await runPack(prodStack(), "prod")).toEqual([]);
        const dev = await runPack(prodStack(), "dev");
        expect(dev.map((v) => `${v.policyName} ${v.enforcementLevel} ${v.message.split(" is not")[0]}`)).toEqual([
            "allowed-image-registries advisory Deployment \"api-gateway-deployment\" container \"api-gateway\" image " +
            "\"registry.example.com/ai-trading/ai-trading-services@sha256:" + "0".repeat(64) + "\" (registry.example.com/ai-trading/ai-trading-services)",
        ]);
    });
});
