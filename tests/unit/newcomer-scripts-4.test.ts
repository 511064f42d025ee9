/**
 * The set-up scripts as a newcomer or a careless operator meets them, round 4 (session 45's newcomer
 * hunt): `npm run up` from a real terminal (a pseudo-terminal of util-linux's `script`, keys typed
 * into it), a second clone of the repo whose dev stack runs. As in newcomer-scripts-3.test.ts, each
 * runs the real script with bash in a copy of the files it needs (a folder whose path holds a
 * space), with fakes first on PATH: nothing here installs, builds, or talks to this machine's Docker
 * engine, and no real cache is touched.
 */
import { spawn } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { run as runCommand } from "../harness/run";

const root = resolve(__dirname, "../..");

let dir: string;
let clone: string;
let cache: string;
let fakes: string;
const pids: number[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "newcomer "));
  clone = join(dir, "my clone");
  cache = join(dir, "cache");
  fakes = join(dir, "fakes");
  mkdirSync(fakes, { recursive: true });
});
afterEach(() => {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Copies repo paths (files or folders) into CLONE (default: the clone), with scripts/lib/cache-dir.sh, which every script sources. */
function copy(...paths: string[]) {
  for (const p of [...paths, "scripts/lib/cache-dir.sh"]) {
    mkdirSync(dirname(join(clone, p)), { recursive: true });
    cpSync(join(root, p), join(clone, p), { recursive: true });
  }
}
/** A fake command first on PATH. */
function fake(name: string, body: string) {
  writeFileSync(join(fakes, name), `#!/bin/bash\n${body}\n`);
  chmodSync(join(fakes, name), 0o755);
}
/** A script of the clone replaced by BODY. */
function script(p: string, body: string) {
  mkdirSync(dirname(join(clone, p)), { recursive: true });
  writeFileSync(join(clone, p), `${body}\n`);
}
const env = (extra: Record<string, string> = {}) => ({ HOME: dir, PATH: `${fakes}:/usr/bin:/bin`, TRADING_CACHE_DIR: cache, GO_FALLBACK_DIRS: "", ...extra });
/** Runs bash with the fakes first on PATH, then only /usr/bin and /bin (no /usr/local/bin: no docker, no go). */
async function run(args: string[], extra: Record<string, string> = {}) {
  const r = await runCommand("bash", args, { cwd: existsSync(clone) ? clone : dir, timeoutMs: 120_000, env: env(extra) });
  return { status: r.status, out: r.stdout, err: r.stderr };
}
/** Is PID a live process (not gone, not a zombie waiting for its parent)? */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
async function until(what: string, cond: () => boolean, ms = 30_000, state = () => "") {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${state()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const pidsIn = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8").trim().split("\n").filter(Boolean).map(Number) : []);

/**
 * COMMAND (a bash command line) on a terminal of its own: util-linux's `script` runs it on a new
 * pseudo-terminal, its controlling terminal, as a terminal's shell runs `npm run up`; what is
 * written to `type` is typed into that terminal (\x03: Ctrl-C, the terminal's SIGINT to its
 * foreground process group). `output` is what the terminal shows.
 */
function onTerminal(command: string, extra: Record<string, string> = {}) {
  const child = spawn("script", ["-qec", command, "/dev/null"], { cwd: clone, detached: true, env: env(extra), stdio: ["pipe", "pipe", "pipe"] });
  pids.push(child.pid!);
  const t = { output: "", type: (keys: string) => child.stdin.write(keys) };
  child.stdout.on("data", (d) => (t.output += d));
  child.stderr.on("data", (d) => (t.output += d));
  const exited = new Promise<number | null>((res) => child.on("exit", (c) => res(c)));
  /** The exit code, or "still running" after MS. */
  const end = (ms: number) => Promise.race([exited, new Promise<"still running">((res) => setTimeout(() => res("still running"), ms))]);
  return Object.assign(t, { end });
}

describe("npm run up from a real terminal: steps that use it (session 45)", () => {
  beforeEach(() => {
    copy("scripts/up.sh", "scripts/lib/steps.sh", "scripts/lib/stack-config.sh", "scripts/lib/pulumi-env.sh", "scripts/lib/local-images.sh", "scripts/lib/locks.sh", "Pulumi.dev.yaml");
    script("scripts/docker/ensure-dockerd.sh", "exit 0");
    script("scripts/lib/check-host-ports.sh", "exit 0");
    script("scripts/tools/build-pulumi-tools.sh", `echo "toolchain built"`);
    // The first step after the images: the end of this test's run.
    script("services/scripts/prepare-npm-cache.sh", `echo "reached the npm cache step"; exit 3`);
  });

  it("a step that writes with `stty tostop` set, sets terminal modes or reads /dev/tty is not stopped by the terminal: the run goes on", async () => {
    // `stty tostop`: a background process group that writes to the terminal is stopped (SIGTTOU).
    script("scripts/lib/npm-install.sh", `echo "npm step wrote"; stty -echo </dev/tty; read -r -t 5 answer </dev/tty; echo "npm step went on"`);
    script("scripts/images/build-images.sh", `echo "images built"`);
    const t = onTerminal("stty tostop; exec bash scripts/up.sh dev");
    const code = await t.end(30_000);
    // before: "still running", the npm step stopped (T) by SIGTTOU, the run waiting for it for ever
    expect(code, t.output).toBe(3);
    expect(t.output).toContain("npm step wrote");
    expect(t.output).toContain("npm step went on");
    expect(t.output).toContain("/dev/tty: No such device or address"); // a prompt fails at once, saying why
    expect(t.output).toContain("toolchain built");
    expect(t.output).toContain("images built"); // the background image build, stopped the same way before
    expect(t.output).toContain("reached the npm cache step");
  });

  it("a step that prompts on /dev/tty (sudo, ssh, a passphrase) fails at once instead of waiting for ever in the background", async () => {
    script("scripts/lib/npm-install.sh", `read -r -p "password: " answer </dev/tty || { echo "npm step: no terminal to ask on" >&2; exit 1; }; echo "npm step got an answer"`);
    const t = onTerminal("exec bash scripts/up.sh dev");
    const code = await t.end(30_000);
    expect(code, t.output).toBe(1); // before: "still running", the step stopped (SIGTTIN) on its read
    expect(t.output).toContain("npm step: no terminal to ask on");
    expect(t.output).not.toContain("toolchain built");
  });

  it("Ctrl-C typed into the terminal stops the run and its step at once, also a step that is stopped", async () => {
    // The npm step stops itself (as SIGTSTP or SIGSTOP from elsewhere would): a stopped process acts
    // on SIGINT only once continued.
    script("scripts/lib/npm-install.sh", `echo $$ >> "${join(dir, "step-pids")}"; sleep 60 & echo $! >> "${join(dir, "step-pids")}"; kill -STOP $$; wait; touch "${join(dir, "step-finished")}"`);
    const t = onTerminal("exec bash scripts/up.sh dev", { STEP_STOP_SECONDS: "60" });
    await until("the npm step", () => pidsIn("step-pids").length === 2, 30_000, () => `: ${t.output}`);
    const step = pidsIn("step-pids");
    pids.push(...step);
    await until("the npm step to stop", () => / T /.test(readFileSync(`/proc/${step[0]}/stat`, "utf8")), 10_000);
    const t0 = Date.now();
    t.type("\x03");
    const code = await t.end(30_000);
    expect(code, t.output).toBe(130); // before: "still running" until STEP_STOP_SECONDS, then KILL
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(t.output).toContain("[up] stopping the step under way (SIGINT to its process group");
    await until("the step to end", () => !step.some(alive), 10_000, () => `: ${t.output}`);
    expect(existsSync(join(dir, "step-finished"))).toBe(false);
    expect(t.output).not.toContain("toolchain built");
  });
});
