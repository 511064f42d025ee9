/**
 * Process plumbing shared by the server starters: free loopback ports, temp dirs, spawning a
 * server in its own process group, bounded readiness waits, and making sure every server dies
 * with the test process (exit hooks plus a parent-death watchdog for when the runner is SIGKILLed).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, chownSync, readdirSync, readFileSync, statSync, createWriteStream, type WriteStream } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { releasePort, reservePort } from "./port-reservations";

/**
 * A free TCP port on 127.0.0.1 for a server started later (a JVM binds it seconds after). Taken
 * below the kernel's ephemeral range (32768-60999 here), which the kernel never hands to a
 * `listen(0)` or an outgoing connection meanwhile: a port from bind(0) was once taken in that gap
 * and a private Kafka failed to start (CI, 2026-11-30). Each test worker has its own slice
 * (VITEST_POOL_ID; the main process slice 0) and never hands out a port twice; 20000-29999 stays
 * clear of Kubernetes NodePorts (30000-32767). Another test run on the machine draws from the same
 * slices, so each port is also reserved machine-wide (./port-reservations.ts: a file per port,
 * owned by this process until it exits) before the probe: the probe alone let the other run's
 * server bind a port between it and ours (fleet-metrics, EADDRINUSE, session 54). The probe stays,
 * for programs outside the harness.
 */
export async function freePort(): Promise<number> {
  const slice = Number(process.env.VITEST_POOL_ID ?? 0) % FREE_PORT_SLICES;
  const base = FREE_PORT_BASE + slice * FREE_PORT_SLICE_SIZE;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = base + Math.floor(Math.random() * FREE_PORT_SLICE_SIZE);
    if (await takePort(port)) return port;
  }
  throw new Error(`no free loopback port in ${base}-${base + FREE_PORT_SLICE_SIZE - 1} after 200 tries`);
}

/** Hands `port` out when no process (this one included) has it and nothing listens on it now. */
async function takePort(port: number): Promise<boolean> {
  if (handedOut.has(port) || !reservePort(port)) return false;
  if (await tryListen(port)) {
    handedOut.add(port);
    return true;
  }
  releasePort(port); // held by a program outside the harness
  return false;
}
const FREE_PORT_BASE = 20_000;
const FREE_PORT_SLICE_SIZE = 2_000;
const FREE_PORT_SLICES = 5;
const handedOut = new Set<number>();

/** Whether freePort() or freePortPair() already gave this port out in this process. */
export function isHandedOut(port: number): boolean {
  return handedOut.has(port);
}

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/**
 * Two free loopback ports p and p + 1 (servers that derive one port from another need them). Both
 * count as handed out: p + 1 once was not, the next freePort() gave it to the same Weaviate's gRPC
 * listener, and it died with "address already in use" (CI, 2026-12-01).
 */
export async function freePortPair(): Promise<[number, number]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const p = await freePort();
    if (p < 65535 && (await takePort(p + 1))) return [p, p + 1];
    handedOut.delete(p); // unused: back to every process
    releasePort(p);
  }
  throw new Error("no two consecutive free loopback ports after 50 tries");
}

/** URL-safe random secret (hex). */
export function generatePassword(bytes = 18): string {
  return randomBytes(bytes).toString("hex");
}

export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(process.env.HARNESS_TMPDIR ?? tmpdir(), `harness-${prefix}-`));
}

export function chownRecursive(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (statSync(path).isDirectory()) {
    for (const entry of readdirSync(path)) chownRecursive(join(path, entry), uid, gid);
  }
}

export function removeDir(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    /* best effort */
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `check` until it resolves truthy or `timeoutMs` passes; fails with the last error and the log tail. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number; proc?: ManagedProcess },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (opts.proc && opts.proc.exited) {
      throw new Error(`${what}: process exited with ${opts.proc.exitCode ?? opts.proc.signal} before ready\n${opts.proc.tail()}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(opts.intervalMs ?? 100);
  }
  throw new Error(
    `${what}: not ready after ${opts.timeoutMs} ms (last error: ${String((lastError as Error)?.message ?? lastError)})` +
      (opts.proc ? `\n${opts.proc.tail()}` : ""),
  );
}

/** Non-zombie processes of process group `pgid` (Linux /proc). */
function groupMembers(pgid: number): number {
  let n = 0;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid && fields[0] !== "Z") n++;
    } catch {
      /* exited meanwhile */
    }
  }
  return n;
}

const live = new Set<ManagedProcess>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const killAll = () => {
    for (const p of live) p.killGroupSync("SIGKILL");
  };
  process.on("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGTERM" ? 15 : 1));
    });
  }
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  /** File receiving stdout+stderr (kept for failure messages). */
  logFile: string;
}

/** A server child process in its own process group, killed with the test process. */
export class ManagedProcess {
  readonly child: ChildProcess;
  exited = false;
  exitCode: number | null = null;
  signal: NodeJS.Signals | null = null;
  readonly exitPromise: Promise<void>;
  private readonly log: WriteStream;
  private readonly recent: string[] = [];
  private watchdog?: ChildProcess;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    opts: SpawnOptions,
  ) {
    installExitHooks();
    this.log = createWriteStream(opts.logFile, { flags: "a" });
    // A log that cannot be written (disk full, file removed) must not crash the test run: the
    // server's last lines are still kept in `recent` for failure messages.
    this.log.on("error", (err) => this.recent.push(`log file error: ${err.message}`));
    this.child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      uid: opts.uid,
      gid: opts.gid,
      detached: true, // own process group: kill() takes every server process down at once
      stdio: ["ignore", "pipe", "pipe"],
    });
    const onData = (chunk: Buffer) => {
      // "exit" can come before the pipes have delivered their last chunks (and a grandchild may
      // still hold them): once stop() has ended the log, a late chunk is kept in memory only.
      // Writing it was ERR_STREAM_WRITE_AFTER_END, an uncaught error that failed passing files.
      if (!this.log.writableEnded) this.log.write(chunk);
      this.recent.push(chunk.toString());
      if (this.recent.length > 60) this.recent.splice(0, this.recent.length - 60);
    };
    this.child.stdout?.on("data", onData);
    this.child.stderr?.on("data", onData);
    this.exitPromise = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.signal = signal;
        live.delete(this);
        this.watchdog?.kill("SIGKILL");
        resolve();
      });
      this.child.once("error", (err) => {
        this.recent.push(`spawn error: ${err.message}`);
        this.exited = true;
        live.delete(this);
        this.watchdog?.kill("SIGKILL");
        resolve();
      });
    });
    this.child.unref();
    (this.child.stdout as unknown as { unref?: () => void })?.unref?.();
    (this.child.stderr as unknown as { unref?: () => void })?.unref?.();
    if (this.child.pid) {
      live.add(this);
      // Parent-death watchdog: if the test runner is SIGKILLed, exit hooks do not run.
      this.watchdog = spawn(
        "/bin/sh",
        ["-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 -${this.child.pid} 2>/dev/null`],
        { detached: true, stdio: "ignore" },
      );
      this.watchdog.unref();
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  tail(lines = 30): string {
    return `--- ${this.name} output (tail) ---\n` + this.recent.join("").split("\n").slice(-lines).join("\n");
  }

  killGroupSync(signal: NodeJS.Signals): void {
    if (this.exited || !this.child.pid) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /** SIGKILL the whole process group (a crash) and wait for the exit. */
  async kill(): Promise<void> {
    this.killGroupSync("SIGKILL");
    await this.exitPromise;
    await this.waitGroupGone();
    await this.closeLog();
  }

  /**
   * Children of the leader (e.g. postgres backends holding shared memory) die asynchronously
   * after SIGKILL; a restart must not race them. Zombies do not count (they hold nothing).
   */
  async waitGroupGone(timeoutMs = 5_000): Promise<void> {
    const pgid = this.child.pid;
    if (!pgid) return;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (groupMembers(pgid) === 0) return;
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        return;
      }
      await sleep(50);
    }
  }

  /** Graceful stop with `signal`; escalates to SIGKILL after `graceMs`. */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 15_000): Promise<void> {
    if (this.exited) {
      await this.closeLog();
      return;
    }
    try {
      process.kill(this.child.pid!, signal); // the leader only: it shuts its own children down
    } catch {
      /* already gone */
    }
    const timer = setTimeout(() => this.killGroupSync("SIGKILL"), graceMs);
    await this.exitPromise;
    clearTimeout(timer);
    // Reap anything left in the group (e.g. children of a shell wrapper).
    try {
      process.kill(-this.child.pid!, "SIGKILL");
    } catch {
      /* group empty */
    }
    await this.waitGroupGone();
    await this.closeLog();
  }

  private closeLog(): Promise<void> {
    return new Promise((r) => (this.log.closed ? r() : this.log.end(() => r())));
  }
}
