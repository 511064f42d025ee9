/**
 * Runs a catalog service in its own Node process, as a production container does
 * (`node --import tsx services/src/main.ts <name>` on loopback), and waits for its /health.
 * BENCH_PROF=<dir> writes a --cpu-prof profile of the services named in BENCH_PROF_SERVICES
 * (comma-separated; default api-gateway) into <dir>.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../tests/harness";

export interface ServiceProcess {
  name: string;
  url: string;
  pid: number;
  child: ChildProcess;
}

/**
 * `logs: "discard"` runs the service at its production log level (info unless `env` says otherwise)
 * with its output sent to /dev/null: the cost of logging is measured, the lines are not shown.
 * The default shows errors only.
 */
export async function startServiceProcess(name: string, env: Record<string, string>, o: { logs?: "errors" | "discard"; nodeArgs?: string[] } = {}): Promise<ServiceProcess> {
  const port = await freePort();
  const profiled = (process.env.BENCH_PROF_SERVICES ?? "api-gateway").split(",").includes(name);
  const prof = process.env.BENCH_PROF && profiled ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROF}`] : [];
  // BENCH_NODE_ARGS: more node options for every service (--trace-gc, which NODE_OPTIONS refuses).
  const nodeArgs = [...(process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean), ...(o.nodeArgs ?? [])];
  const child = spawn(process.execPath, [...prof, ...nodeArgs, "--import", "tsx", join(__dirname, "..", "..", "services", "src", "main.ts"), name], {
    env: { ...process.env, LOG_LEVEL: o.logs === "discard" ? "info" : "error", ...env, PORT: String(port), HOST: "127.0.0.1" },
    stdio: ["ignore", o.logs === "discard" ? "ignore" : "inherit", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (ok) return { name, url, pid: child.pid!, child };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGTERM");
  throw new Error(`${name} did not become healthy`);
}

/** SIGTERM, then waits for the exit (SIGKILL after `graceMs`). */
export async function stopServiceProcess(s: ServiceProcess, graceMs = 10_000): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => s.child.once("exit", () => r()));
  s.child.kill("SIGTERM");
  const timer = setTimeout(() => s.child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * The fields of a /proc stat file after the command name: proc(5) field 3 (state) is [0], ppid [1],
 * utime [11], stime [12], cutime [13], cstime [14], in clock ticks (100/s).
 */
function statFields(path: string): string[] {
  const stat = readFileSync(path, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** CPU seconds in user and system mode a process has used so far, from /proc (holds on a loaded machine too). */
export function cpuTimes(pid: number): { user: number; sys: number } {
  const f = statFields(`/proc/${pid}/stat`);
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
}

/** CPU seconds (user + system) a process has used so far, from /proc (holds on a loaded machine too). */
export function cpuSeconds(pid: number): number {
  const { user, sys } = cpuTimes(pid);
  return user + sys;
}

/** `root` and its live descendants with their stat fields, from one pass over /proc. */
function processTree(root: number): { pid: number; fields: string[] }[] {
  const fields = new Map<number, string[]>();
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const f = statFields(`/proc/${entry}/stat`);
      fields.set(Number(entry), f);
      children.set(Number(f[1]), [...(children.get(Number(f[1])) ?? []), Number(entry)]);
    } catch {
      // exited while listed
    }
  }
  const tree: { pid: number; fields: string[] }[] = [];
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    const f = fields.get(pid);
    if (f) tree.push({ pid, fields: f });
    todo.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/**
 * CPU seconds of a process and all its descendants (a PostgreSQL postmaster and its backends, a
 * server behind a wrapper script): the live ones from their /proc stat, the exited ones as their
 * parents' reaped-children time.
 */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const { fields: f } of processTree(root)) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return ticks / 100;
}

/**
 * CPU seconds the JIT compiler threads of a JVM (a process or one of its descendants: the broker
 * behind its wrapper script) have used so far ("C1 CompilerThre" / "C2 CompilerThre" in
 * /proc/<pid>/task/<tid>/comm). A freshly started broker keeps compiling for tens of seconds; the
 * bench waits for this to go quiet, as on a broker that has run for a while.
 */
export function jitCompilerCpuSeconds(root: number): number {
  let ticks = 0;
  for (const { pid } of processTree(root)) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // exited since the pass over /proc
    }
    for (const tid of tasks) {
      try {
        if (!/^C[12] CompilerThre/.test(readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8"))) continue;
        const f = statFields(`/proc/${pid}/task/${tid}/stat`);
        ticks += Number(f[11]) + Number(f[12]);
      } catch {
        // thread gone
      }
    }
  }
  return ticks / 100;
}
