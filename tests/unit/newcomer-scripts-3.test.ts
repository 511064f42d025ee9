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
async function until(what: string, cond: () => boolean, ms = 30_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
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
