/**
 * The sandbox of the newcomer-scripts tests (tests/unit/newcomer-scripts*.test.ts): each test runs
 * the real scripts with bash in a copy of the files it needs, in a fresh folder whose path holds a
 * space, with fakes first on PATH and a cache of its own: nothing installs, builds, or touches this
 * machine's Docker engine or real cache. `useNewcomerSandbox()` (called once at a file's top level)
 * makes the folders before each test and removes them, and kills what the test registered in `pids`,
 * after it. The folder names are live bindings: read them inside a test or a hook.
 */
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterEach, beforeEach } from "vitest";
import { run as runCommand } from "../harness/run";

/** The repository the scripts are copied from. */
export const root = resolve(__dirname, "../..");

/** The test's own folder; the clone (`my clone`), its cache and its fakes live under it. */
export let dir: string;
export let clone: string;
export let cache: string;
export let fakes: string;
/** Processes a test started that must not outlive it (SIGKILLed after it). */
export const pids: number[] = [];

export function useNewcomerSandbox(): void {
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
}

/**
 * Copies repo paths (files or folders) into the clone, with scripts/lib/cache-dir.sh, which every script
 * sources, and what up.sh and test.sh look at before anything else: policies/config (the stack's pack
 * configuration) and scripts/lib/node-version.sh (Node's version; package.json's, else 20).
 */
export function copy(...paths: string[]): void {
  for (const p of [...paths, "scripts/lib/cache-dir.sh", "policies/config", "scripts/lib/node-version.sh"]) {
    mkdirSync(dirname(join(clone, p)), { recursive: true });
    cpSync(join(root, p), join(clone, p), { recursive: true });
  }
}

/** A fake command first on PATH. */
export function fake(name: string, body: string): void {
  writeFileSync(join(fakes, name), `#!/bin/bash\n${body}\n`);
  chmodSync(join(fakes, name), 0o755);
}

/**
 * A fake docker: `ps` prints LINES (its --format's fields, tab-separated), `volume ls` and `network ls`
 * the names in LEFTOVERS; any other call is recorded in docker-calls.
 */
export function fakeDocker(lines: string[], leftovers: { volumes?: string[]; networks?: string[] } = {}): void {
  const names = (list: string[] = []) => (list.length === 0 ? ":" : `printf '%s\\n' ${list.map((n) => JSON.stringify(n)).join(" ")}`);
  fake(
    "docker",
    [
      `if [ "$1" = ps ]; then printf '%b\\n' ${lines.map((l) => JSON.stringify(l)).join(" ")}; exit 0; fi`,
      `if [ "$1 $2" = "volume ls" ]; then ${names(leftovers.volumes)}; exit 0; fi`,
      `if [ "$1 $2" = "network ls" ]; then ${names(leftovers.networks)}; exit 0; fi`,
      `echo "$*" >> "${join(dir, "docker-calls")}"`,
    ].join("\n"),
  );
}

/** A script of the clone replaced by BODY. */
export function script(p: string, body: string): void {
  mkdirSync(dirname(join(clone, p)), { recursive: true });
  writeFileSync(join(clone, p), `${body}\n`);
}

/**
 * up.sh and what it sources, with its steps faked until the builds: Docker and npm pass, the image
 * build touches `images-started` and the toolchain's touches `toolchain-started` and fails. For the
 * checks up.sh makes before anything slow starts.
 */
export function upUntilTheBuilds(): void {
  copy("scripts/up.sh", "scripts/lib/steps.sh", "scripts/lib/stack-config.sh", "scripts/lib/pulumi-env.sh", "scripts/lib/local-images.sh", "scripts/lib/locks.sh");
  script("scripts/docker/ensure-dockerd.sh", "exit 0");
  script("scripts/lib/npm-install.sh", "exit 0");
  script("scripts/images/build-images.sh", `touch "${join(dir, "images-started")}"`);
  script("scripts/tools/build-pulumi-tools.sh", `touch "${join(dir, "toolchain-started")}"; exit 1`);
}

/** The scripts' environment: the fakes first on PATH, then only /usr/bin and /bin (no /usr/local/bin: no docker, no go). */
export const env = (extra: Record<string, string> = {}): Record<string, string> =>
  ({ HOME: dir, PATH: `${fakes}:/usr/bin:/bin`, TRADING_CACHE_DIR: cache, GO_FALLBACK_DIRS: "", ...extra });

/**
 * Runs bash in the clone (the test's folder before there is one) with `env(extra)`. Asynchronous
 * (tests/harness/run.ts): a script waiting on a lock must not block the test worker.
 */
export async function run(args: string[], extra: Record<string, string> = {}): Promise<{ status: number | null; out: string; err: string }> {
  const r = await runCommand("bash", args, { cwd: existsSync(clone) ? clone : dir, timeoutMs: 120_000, env: env(extra) });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

/** Is PID a live process (not gone, not a zombie waiting for its parent)? */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/**
 * How long a stopped step or build (the fakes run 30 s when nothing stops them) may take to end:
 * well below their 30 s, well above a loaded machine's pauses (5 s before: a signal, a trap and a
 * process group's end at load 20-40 took seconds).
 */
export const STOPPED_WITHIN_MS = 15_000;

/** Waits until COND holds, failing after MS with what was awaited and STATE's account of it. */
export async function until(what: string, cond: () => boolean, ms = 30_000, state = () => ""): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${state()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
