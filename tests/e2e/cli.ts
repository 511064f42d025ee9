/**
 * Runs the Pulumi CLI built by scripts/tools (in .tools/bin) against the real program, with a
 * private file backend and passphrase so the e2e suite never touches a user's own stacks. The CLI
 * runs in a private project folder (the repo's Pulumi.yaml with `main` pointing back at the repo),
 * so the stack config files it writes (with their encryption salt) never land in the work tree.
 */
import { spawn, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const root = path.join(__dirname, "..", "..");

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

export class Pulumi {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;

  /** Private project folder the CLI runs in. */
  readonly project: string;

  constructor(label: string) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `trading-e2e-${label}-`));
    this.project = path.join(this.dir, "project");
    fs.mkdirSync(this.project);
    const projectFile = fs
      .readFileSync(path.join(root, "Pulumi.yaml"), "utf8")
      .replace(/^main: .*$/m, `main: ${path.relative(this.project, root)}/`);
    fs.writeFileSync(path.join(this.project, "Pulumi.yaml"), projectFile);
    const tools = path.join(root, ".tools", "bin");
    this.env = {
      ...process.env,
      PATH: `${tools}:${process.env.PATH}`,
      PULUMI_BACKEND_URL: `file://${path.join(this.dir, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(24).toString("base64"),
      PULUMI_HOME: path.join(this.dir, "home"),
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    };
    fs.mkdirSync(path.join(this.dir, "state"), { recursive: true });
  }

  /** Writes the stack's config file in the private project: Pulumi.<source>.yaml plus overrides. */
  configFile(stack: string, source: string, overrides: Record<string, string> = {}): string {
    const file = path.join(this.project, `Pulumi.${stack}.yaml`);
    let text = fs.readFileSync(path.isAbsolute(source) ? source : path.join(root, `Pulumi.${source}.yaml`), "utf8");
    for (const [k, v] of Object.entries(overrides)) text += `  trading:${k}: ${JSON.stringify(v)}\n`;
    fs.writeFileSync(file, text);
    return file;
  }

  /**
   * Runs the CLI without blocking the event loop (a blocked test worker loses its RPC link with
   * vitest during a long `up`).
   */
  run(args: string[], opts: { allowFailure?: boolean; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
    const t0 = Date.now();
    return new Promise((resolve, reject) => {
      const child = spawn("pulumi", [...args, "--non-interactive"], { cwd: this.project, env: this.env });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c) => (stdout += c));
      child.stderr.on("data", (c) => (stderr += c));
      // A value on stdin (a secret: never on a command line, never in an error message).
      child.stdin.end(opts.input ?? "");
      const timer = setTimeout(() => child.kill("SIGTERM"), opts.timeoutMs ?? 20 * 60_000);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        const result = { status: code ?? -1, stdout, stderr, seconds: (Date.now() - t0) / 1000 };
        if (result.status !== 0 && !opts.allowFailure) {
          reject(new Error(`pulumi ${args.join(" ")} exited ${result.status}\n${stdout.slice(-6000)}\n${stderr.slice(-4000)}`));
        } else resolve(result);
      });
    });
  }

  /** Creates the stack (its config file written first) and runs commands against it. */
  async stack(stack: string) {
    await this.run(["stack", "init", stack]);
    const withStack = (args: string[]) => [...args, "--stack", stack];
    return {
      run: (args: string[], opts?: { allowFailure?: boolean; timeoutMs?: number; input?: string }) => this.run(withStack(args), opts),
      outputs: async (showSecrets = false): Promise<Record<string, any>> =>
        JSON.parse((await this.run(withStack(["stack", "output", "--json", ...(showSecrets ? ["--show-secrets"] : [])]))).stdout),
    };
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function docker(args: string[]): string {
  const r = spawnSync("docker", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

export function toolsAvailable(): boolean {
  return fs.existsSync(path.join(root, ".tools", "bin", "pulumi"));
}
