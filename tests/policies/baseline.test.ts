import { describe, expect, it } from "vitest";
import { devStack, prodStack } from "./fixtures";
import { runPack, summary } from "./run-pack";

describe("compliant fixtures", () => {
    it("the dev (Docker) stack passes under dev.json; under prod.json only the prod-only backup rule fires", async () => {
        expect(await runPack(devStack(), "dev")).toEqual([]);
        expect(summary(await runPack(devStack(), "prod"))).toEqual(["datastore-backups postgres-container"]);
    });
    it("the prod (Kubernetes) stack passes under dev.json and prod.json", async () => {
        expect(await runPack(prodStack(), "dev")).toEqual([]);
        expect(await runPack(prodStack(), "prod")).toEqual([]);
    });
});
