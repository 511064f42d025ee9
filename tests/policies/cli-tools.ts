/**
 * The real Pulumi CLI for the policy tests: finds the binaries scripts/tools/build-pulumi-tools.sh
 * built (repo .tools/bin, then the versioned folders of the tools cache) and prepares a private
 * project folder with a file backend, so a test never touches a user's stacks.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const root = path.join(__dirname, "..", "..");
const cache = process.env.TRADING_CACHE_DIR ?? path.join(os.homedir(), ".cache", "ai-trading");

export function findBin(name: string): string | undefined {
    const dirs = [path.join(root, ".tools", "bin")];
    const tools = path.join(cache, "pulumi-tools");
    if (fs.existsSync(tools)) for (const d of fs.readdirSync(tools).sort().reverse()) dirs.push(path.join(tools, d, "bin"));
    return dirs.map((d) => path.join(d, name)).find((p) => fs.existsSync(p));
}

/** A private project folder: Pulumi.yaml, package.json, index.js, the repo's node_modules, a file backend. */
export function projectDir(work: string, program: string[], binaries: string[]): NodeJS.ProcessEnv {
    fs.writeFileSync(path.join(work, "Pulumi.yaml"), "name: policy-cli\nruntime: nodejs\nmain: index.js\n");
    fs.writeFileSync(path.join(work, "package.json"), JSON.stringify({ name: "policy-cli", version: "0.0.1", main: "index.js" }));
    fs.writeFileSync(path.join(work, "index.js"), program.join("\n"));
    fs.symlinkSync(path.join(root, "node_modules"), path.join(work, "node_modules"));
    const bin = path.join(work, "bin");
    fs.mkdirSync(bin);
    // The dynamic provider plugin the CLI distribution would ship.
    const dyn = path.join(bin, "pulumi-resource-pulumi-nodejs");
    fs.writeFileSync(dyn, `#!/bin/sh\nexec "${process.execPath}" "${path.join(root, "node_modules", "@pulumi", "pulumi", "cmd", "dynamic-provider", "index.js")}" "$@"\n`);
    fs.chmodSync(dyn, 0o755);
    fs.mkdirSync(path.join(work, "state"));
    return {
        ...process.env,
        PATH: [bin, ...new Set(binaries.map((b) => path.dirname(b))), process.env.PATH].join(path.delimiter),
        PULUMI_HOME: path.join(work, "home"),
        PULUMI_BACKEND_URL: `file://${path.join(work, "state")}`,
        PULUMI_CONFIG_PASSPHRASE: "test-only",
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    };
}

export interface CliRun {
    status: number;
    stdout: string;
    stderr: string;
}

/** Runs a binary without blocking the event loop (a worker blocked for a minute loses vitest's RPC). */
export function runCli(bin: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliRun> {
    return new Promise((resolve, reject) => {
        const child = spawn(bin, args, { cwd: opts.cwd, env: opts.env });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (c) => (stdout += c));
        child.stderr.on("data", (c) => (stderr += c));
        const timer = setTimeout(() => child.kill("SIGTERM"), opts.timeoutMs ?? 600_000);
        child.on("error", reject);
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ status: code ?? -1, stdout, stderr });
        });
        child.stdin.end();
    });
}
