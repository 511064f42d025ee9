/**
 * The set-up scripts as a newcomer or a careless operator meets them, round 3 (session 44's newcomer
 * hunt): a host port of the dev stack taken by another program, `npm run up` stopped with SIGTERM or
 * SIGHUP while a step runs, a Maven download that failed once. As in newcomer-scripts.test.ts, each
 * runs the real script with bash in a copy of the files it needs (a folder whose path holds a
 * space), with fakes first on PATH: nothing here installs, builds, or talks to this machine's Docker
 * engine, and no real cache is touched.
 */
import { spawn } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
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
const servers: Server[] = [];
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
  for (const s of servers.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Copies repo paths (files or folders) into the clone, with scripts/lib/cache-dir.sh, which every script sources. */
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

describe("scripts/kafka/fetch-kafka.sh after a failed Maven download (session 44)", () => {
  it("a rerun asks Maven Central again: the markers of the failed download do not keep it broken", async () => {
    copy("scripts/kafka", "scripts/lib/locks.sh");
    fake("java", "exit 0");
    fake("unzip", "exit 1");
    // Maven as it behaves: a download that fails leaves <artifact>.lastUpdated, and until the update
    // interval passes (a day) a run without -U fails on it without asking the network.
    const m2 = join(cache, "m2");
    const marker = join(m2, "org/apache/kafka/kafka_2.13/9.9.9/kafka_2.13-9.9.9.jar.lastUpdated");
    fake(
      "mvn",
      `out=""; forced=0
for a in "$@"; do case $a in -DoutputDirectory=*) out=\${a#-DoutputDirectory=} ;; -U) forced=1 ;; esac; done
if [ -e "${join(dir, "network-down")}" ]; then
  mkdir -p "${dirname(marker)}"; touch "${marker}"
  echo "[ERROR] Could not transfer artifact org.apache.kafka:kafka_2.13:jar:9.9.9: Connection reset" >&2; exit 1
fi
if [ -e "${marker}" ] && [ $forced = 0 ]; then
  echo "[ERROR] org.apache.kafka:kafka_2.13:jar:9.9.9 was cached in the local repository, resolution will not be reattempted until the update interval of central has elapsed or updates are forced" >&2; exit 1
fi
touch "$out/kafka_2.13-9.9.9.jar" "$out/kafka-tools-9.9.9.jar"`,
    );
    writeFileSync(join(dir, "network-down"), "");
    const blip = await run(["scripts/kafka/fetch-kafka.sh"], { KAFKA_VERSION: "9.9.9" });
    expect(blip.status).toBe(1);
    expect(blip.err).toContain("Connection reset");
    expect(blip.err).toContain("Maven could not fetch Kafka 9.9.9's jars from Maven Central");
    expect(blip.err).toContain("run again");
    expect(existsSync(marker)).toBe(true);

    rmSync(join(dir, "network-down")); // the network is back
    const again = await run(["scripts/kafka/fetch-kafka.sh"], { KAFKA_VERSION: "9.9.9" });
    expect(again.err).not.toContain("was cached in the local repository"); // before: failed so for a day
    expect(again.status).toBe(0);
    expect(again.out.trim().split("\n").pop()).toBe(join(cache, "kafka/9.9.9"));
    expect(existsSync(join(cache, "kafka/9.9.9/jars/kafka_2.13-9.9.9.jar"))).toBe(true);
    expect(again.err).toContain("removed 1 marker(s) of earlier failed downloads");
  });
});

describe("npm run up stopped with SIGTERM or SIGHUP while a step runs (session 44)", () => {
  const pidsIn = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8").trim().split("\n").filter(Boolean).map(Number) : []);
  beforeEach(() => {
    copy("scripts/up.sh", "scripts/lib/steps.sh", "scripts/lib/stack-config.sh", "scripts/lib/pulumi-env.sh", "scripts/lib/local-images.sh", "scripts/lib/locks.sh", "Pulumi.dev.yaml");
    script("scripts/docker/ensure-dockerd.sh", "exit 0");
    script("scripts/lib/check-host-ports.sh", "exit 0");
    script("scripts/images/build-images.sh", "exit 0");
    // The npm step: long, with a child of its own; both pids recorded.
    script("scripts/lib/npm-install.sh", `echo $$ >> "${join(dir, "step-pids")}"; sleep 30 & echo $! >> "${join(dir, "step-pids")}"; wait $!; touch "${join(dir, "step-finished")}"`);
    script("scripts/tools/build-pulumi-tools.sh", `touch "${join(dir, "next-step")}"`);
  });

  for (const [signal, code] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    it(`${signal} to the run's pid acts at once: the step under way stops, the run ends, and nothing after it runs`, async () => {
      // Another run's process, which ours must not touch.
      const other = spawn("sleep", ["30"], { stdio: "ignore", detached: true });
      pids.push(other.pid!);
      const child = spawn("bash", ["scripts/up.sh", "dev"], { cwd: clone, detached: true, env: env() });
      pids.push(child.pid!);
      let err = "";
      child.stderr.on("data", (d) => (err += d));
      child.stdout.resume();
      const exited = new Promise<number | null>((res) => child.on("exit", (c) => res(c)));
      await until("the npm step", () => pidsIn("step-pids").length === 2);
      const step = pidsIn("step-pids");
      pids.push(...step);
      const t0 = Date.now();
      process.kill(child.pid!, signal); // kill <pid>, a supervisor, a closed terminal: the run's pid only
      const code_ = await Promise.race([exited, new Promise<"still running">((res) => setTimeout(() => res("still running"), 15_000))]);
      expect(code_, `the run after ${signal}; its stderr: ${err}`).toBe(code); // before: went on until the step's 30 s ended
      expect(Date.now() - t0).toBeLessThan(15_000);
      await until("the step to end", () => !step.some(alive), 5_000, () => `: ${err}; ${step.map((p) => { try { return readFileSync(`/proc/${p}/stat`, "utf8").slice(0, 60); } catch { return `${p} gone`; } }).join(" | ")}`);
      expect(err).toContain("[up] stopping the step under way (SIGTERM to its process group");
      expect(existsSync(join(dir, "step-finished"))).toBe(false);
      expect(existsSync(join(dir, "next-step"))).toBe(false);
      expect(alive(other.pid!)).toBe(true);
    });
  }

  it("Ctrl-C (SIGINT to the run's process group) is passed on as SIGINT, and what the step left in its group goes too", async () => {
    const child = spawn("bash", ["scripts/up.sh", "dev"], { cwd: clone, detached: true, env: env() });
    pids.push(child.pid!);
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdout.resume();
    const exited = new Promise<number | null>((res) => child.on("exit", (c) => res(c)));
    await until("the npm step", () => pidsIn("step-pids").length === 2);
    const step = pidsIn("step-pids");
    pids.push(...step);
    process.kill(-child.pid!, "SIGINT"); // what Ctrl-C sends: the terminal's foreground process group
    const code = await Promise.race([exited, new Promise<"still running">((res) => setTimeout(() => res("still running"), 15_000))]);
    expect(code, `the run after SIGINT; its stderr: ${err}`).toBe(130);
    await until("the step to end", () => !step.some(alive), 5_000, () => `: ${err}; ${step.map((p) => { try { return readFileSync(`/proc/${p}/stat`, "utf8").slice(0, 60); } catch { return `${p} gone`; } }).join(" | ")}`);
    expect(err).toContain("[up] stopping the step under way (SIGINT to its process group");
    // before: the step's shell ended, its background child (which ignores SIGINT) went on alone
    expect(existsSync(join(dir, "step-finished"))).toBe(false);
    expect(existsSync(join(dir, "next-step"))).toBe(false);
  });
});
