/**
 * The pack as the Pulumi CLI runs it: `@pulumi/pulumi/cmd/run-policy-pack` compiles policies/index.ts
 * with ts-node and serves the Analyzer gRPC API; this test is the engine side (GetAnalyzerInfo,
 * Configure with a config file, Analyze, AnalyzeStack). It checks the assembled pack, the wire
 * format of properties and the config file handling, without a CLI or provider plugins.
 */
import { ChildProcess, spawn } from "child_process";
import * as path from "path";
import { createRequire } from "module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { policies } from "../../policies/all";
import { dockerPostgres, prodStack, replace } from "./fixtures";
import { loadConfig, reconcileConfig, TestResource } from "./run-pack";

const policiesDir = path.join(__dirname, "..", "..", "policies");
const req = createRequire(path.join(policiesDir, "node_modules", "@pulumi", "pulumi", "package.json"));
const grpc = req("@grpc/grpc-js");
const services = req("./proto/analyzer_grpc_pb.js");
const pb = req("./proto/analyzer_pb.js");
const { Struct } = req("google-protobuf/google/protobuf/struct_pb.js");
const { Empty } = req("google-protobuf/google/protobuf/empty_pb.js");

const LEVEL = { advisory: 0, mandatory: 1, disabled: 2, remediate: 3 } as const;
const LEVEL_NAME = ["advisory", "mandatory", "disabled", "remediate"];

let child: ChildProcess;
let client: any;

function call<T>(method: string, request: unknown): Promise<T> {
    return new Promise((resolve, reject) => client[method](request, (err: Error | null, res: T) => (err ? reject(err) : resolve(res))));
}

beforeAll(async () => {
    child = spawn(process.execPath, [path.join(policiesDir, "node_modules", "@pulumi", "pulumi", "cmd", "run-policy-pack"), "127.0.0.1:1", "."], {
        cwd: policiesDir,
        stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const port = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (d) => {
            out += d;
            const m = /^(\d+)\n/.exec(out);
            if (m) resolve(m[1]);
        });
        child.on("exit", (code) => reject(new Error(`policy pack exited ${code}: ${stderr}`)));
    });
    client = new services.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    // The pack is compiled at start (ts-node): over two minutes at load 80 on two cores.
}, 600_000);

afterAll(() => {
    client?.close();
    if (child && child.exitCode === null) child.kill();
});

async function configure(file: "dev" | "prod") {
    const request = new pb.ConfigureAnalyzerRequest();
    const map = request.getPolicyconfigMap();
    for (const [name, c] of reconcileConfig(loadConfig(file))) {
        const pc = new pb.PolicyConfig();
        pc.setEnforcementlevel(LEVEL[c.level]);
        pc.setProperties(Struct.fromJavaScript(c.props as any));
        map.set(name, pc);
    }
    await call("configure", request);
}

function diagnostics(res: any) {
    return res.getDiagnosticsList().map((d: any) => ({ policy: d.getPolicyname(), level: LEVEL_NAME[d.getEnforcementlevel()], message: d.getMessage() }));
}

async function analyze(r: TestResource) {
    const request = new pb.AnalyzeRequest();
    request.setType(r.type);
    request.setName(r.name);
    request.setUrn(`urn:pulumi:prod::trading::${r.type}::${r.name}`);
    request.setProperties(Struct.fromJavaScript(JSON.parse(JSON.stringify(r.props))));
    request.setOptions(new pb.AnalyzerResourceOptions());
    return diagnostics(await call("analyze", request));
}

async function analyzeStack(rs: TestResource[]) {
    const request = new pb.AnalyzeStackRequest();
    for (const r of rs) {
        const ar = new pb.AnalyzerResource();
        ar.setType(r.type);
        ar.setName(r.name);
        ar.setUrn(`urn:pulumi:prod::trading::${r.type}::${r.name}`);
        ar.setProperties(Struct.fromJavaScript(JSON.parse(JSON.stringify(r.props))));
        ar.setOptions(new pb.AnalyzerResourceOptions());
        request.addResources(ar);
    }
    return diagnostics(await call("analyzeStack", request));
}

describe("the served policy pack (run-policy-pack over gRPC)", () => {
    it("announces trading-hardening with every policy, mandatory by default", async () => {
        const info: any = await call("getAnalyzerInfo", new Empty());
        expect(info.getName()).toBe("trading-hardening");
        const served = info.getPoliciesList().map((p: any) => `${p.getName()}:${LEVEL_NAME[p.getEnforcementlevel()]}`);
        expect(served).toEqual(policies.map((p) => `${p.name}:mandatory`));
    });

    it("with prod.json: a compliant stack passes, a guide password is a mandatory violation", async () => {
        await configure("prod");
        for (const r of prodStack()) expect(await analyze(r), r.name).toEqual([]);
        expect(await analyzeStack(prodStack())).toEqual([]);
        const pg = replace([dockerPostgres({ ports: [] })], "postgres-container", (p) => { p.envs[1] = "POSTGRES_PASSWORD=ai_trading_secure_pass_2024"; })[0];
        const ds = await analyze(pg);
        expect(ds.map((d: any) => `${d.policy}:${d.level}`)).toEqual(["no-default-credentials:mandatory"]);
        // The CLI shows the policy description, then the violation.
        expect(ds[0].message).toMatch(/^No resource may carry a credential published in the deployment guide .*\nContainer "postgres-container" has the deployment guide's published default "ai_trading_secure_pass_2024" at envs\[1\]/s);
        const noBackup = prodStack().filter((r) => r.name !== "postgres-backup-cronjob");
        expect((await analyzeStack(noBackup)).map((d: any) => `${d.policy}:${d.level}`)).toEqual(["datastore-backups:mandatory"]);
    });

    it("with dev.json: the same violation is advisory and prod-only rules are off", async () => {
        await configure("dev");
        const pg = replace([dockerPostgres()], "postgres-container", (p) => { p.envs[1] = "POSTGRES_PASSWORD=ai_trading_secure_pass_2024"; })[0];
        expect((await analyze(pg)).map((d: any) => `${d.policy}:${d.level}`)).toEqual(["no-default-credentials:advisory"]);
        const noBackup = prodStack().filter((r) => r.name !== "postgres-backup-cronjob");
        expect(await analyzeStack(noBackup)).toEqual([]);
    });
});
