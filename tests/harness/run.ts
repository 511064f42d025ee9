/**
 * Runs a command to its end without blocking the test worker's event loop, answering like
 * `spawnSync` (status, stdout, stderr; never rejects). A worker blocked longer than 60 s (a cold
 * build, a venv install, initdb on a loaded machine) cannot take vitest's answers to its progress
 * reports in time: the run ends with "[vitest-worker]: Timeout calling onTaskUpdate" and exits 1
 * though every test passed (a cold `npm test` of session 34, building actionlint in a worker).
 * Anything that can take that long goes through here, never `spawnSync`/`execFileSync`.
 */
import { spawn, type SpawnOptions } from "node:child_process";

export interface RunResult {
  /** The exit code; null when the command was killed (by `timeoutMs`) or could not start. */
  status: number | null;
  stdout: string;
  stderr: string;
  /** Why it could not start (ENOENT...), or that it was stopped at `timeoutMs`. */
  error?: Error;
}

export function run(command: string, args: string[], opts: Omit<SpawnOptions, "stdio"> & { timeoutMs?: number } = {}): Promise<RunResult> {
  const { timeoutMs, ...spawnOpts } = opts;
  return new Promise((resolve) => {
    const child = spawn(command, args, { ...spawnOpts, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let error: Error | undefined;
    const timer = timeoutMs ? setTimeout(() => { error = new Error(`${command} stopped after ${timeoutMs} ms`); child.kill("SIGKILL"); }, timeoutMs) : undefined;
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => { error ??= e; });
    child.on("close", (code) => {
      if (timer) clearTimeout(timer);
      resolve({ status: error ? null : code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), error });
    });
  });
}

/** `run`, failing with the command's stderr unless it exits 0; its stdout. */
export async function runOk(command: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(command, args, opts);
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.trim().split("\n").slice(-15).join("\n")}`);
  return r.stdout;
}
