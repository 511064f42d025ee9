/** Helpers of the trading end-to-end test and benchmark: child-process services, HTTP, polling. */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { watchServiceWarnings } from "../harness/child-warnings";

export const ROOT = join(__dirname, "../..");

/** A catalog service run as its own Node process (`node --import tsx services/src/main.ts <name>`), so it can be SIGKILLed; a leak warning on its stderr fails the test file (tests/harness/child-warnings.ts). */
export class ChildService {
  proc?: ChildProcess;
  logs: string[] = [];
  constructor(
    readonly name: string,
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  /** Bound on a cold start (tsx compiles the service first): generous, it only guards against a hang. */
  async start(timeoutMs = 300_000): Promise<void> {
    const p = spawn(process.execPath, ["--import", "tsx", "services/src/main.ts", this.name], {
      cwd: ROOT,
      env: { ...process.env, ...this.env, PORT: String(this.port), HOST: "127.0.0.1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = p;
    const keep = (d: Buffer) => {
      this.logs.push(...d.toString().split("\n").filter(Boolean));
      if (this.logs.length > 400) this.logs.splice(0, this.logs.length - 400);
    };
    p.stdout!.on("data", keep);
    p.stderr!.on("data", keep);
    // A MaxListenersExceededWarning it prints fails the test file (tests/harness/listener-warning-guard.ts).
    watchServiceWarnings(this.name, p.stderr);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (p.exitCode !== null) throw new Error(`${this.name} exited with ${p.exitCode}: ${this.logs.slice(-10).join("\n")}`);
      try {
        const r = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) });
        if (r.ok) return;
      } catch {
        /* not yet */
      }
      await sleep(200);
    }
    throw new Error(`${this.name} did not start: ${this.logs.slice(-10).join("\n")}`);
  }
  /** Crash: SIGKILL, no shutdown hooks. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await exited;
  }
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitUntil<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

export async function http(method: string, url: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: res.status, body, headers: res.headers };
}
