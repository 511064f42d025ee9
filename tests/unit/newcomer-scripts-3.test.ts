/**
 * The set-up scripts as a newcomer or a careless operator meets them, round 3 (session 44's newcomer
 * hunt): a host port of the dev stack taken by another program, `npm run up` stopped with SIGTERM or
 * SIGHUP while a step runs, a Maven download that failed once. As in newcomer-scripts.test.ts, each
 * runs the real script with bash in a copy of the files it needs (a folder whose path holds a
 * space), with fakes first on PATH: nothing here installs, builds, or talks to this machine's Docker
 * engine, and no real cache is touched.
 */
import { spawn } from "node:child_process";
import { cpSync, existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { run as runCommand } from "../harness/run";
import { alive, cache, clone, copy, dir, env, fake, fakes, pids, root, run, script, STOPPED_WITHIN_MS, until, upUntilTheBuilds, useNewcomerSandbox, fakeDocker } from "../helpers/newcomer-sandbox";

useNewcomerSandbox();
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

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
      const code_ = await Promise.race([exited, new Promise<"still running">((res) => setTimeout(() => res("still running"), STOPPED_WITHIN_MS))]);
      expect(code_, `the run after ${signal}; its stderr: ${err}`).toBe(code); // before: went on until the step's 30 s ended
      expect(Date.now() - t0).toBeLessThan(STOPPED_WITHIN_MS);
      await until("the step to end", () => !step.some(alive), STOPPED_WITHIN_MS, () => `: ${err}; ${step.map((p) => { try { return readFileSync(`/proc/${p}/stat`, "utf8").slice(0, 60); } catch { return `${p} gone`; } }).join(" | ")}`);
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
    const code = await Promise.race([exited, new Promise<"still running">((res) => setTimeout(() => res("still running"), STOPPED_WITHIN_MS))]);
    expect(code, `the run after SIGINT; its stderr: ${err}`).toBe(130);
    await until("the step to end", () => !step.some(alive), STOPPED_WITHIN_MS, () => `: ${err}; ${step.map((p) => { try { return readFileSync(`/proc/${p}/stat`, "utf8").slice(0, 60); } catch { return `${p} gone`; } }).join(" | ")}`);
    expect(err).toContain("[up] stopping the step under way (SIGINT to its process group");
    // before: the step's shell ended, its background child (which ignores SIGINT) went on alone
    expect(existsSync(join(dir, "step-finished"))).toBe(false);
    expect(existsSync(join(dir, "next-step"))).toBe(false);
  });
});

describe("npm run up and a host port the dev stack publishes that another program holds (session 44)", () => {
  // tsx and the stack's parser on a loaded machine: 5 s alone, 14 s measured here beside other runs.
  const SLOW = 120_000;
  /** A port held by a listener of this test on ADDRESS (kept until the test ends). */
  const held = (address = "127.0.0.1", port = 0) =>
    new Promise<number>((res, rej) => {
      const s = createServer();
      s.once("error", rej);
      s.listen({ host: address, port, exclusive: true }, () => {
        servers.push(s);
        res((s.address() as { port: number }).port);
      });
    });
  /** A port free now on 127.0.0.1. */
  const free = async () => {
    const port = await held();
    servers.pop()!.close();
    return port;
  };
  /** The clone's Pulumi.dev.yaml with SETTINGS added under config. */
  const settings = (extra: Record<string, string>) =>
    writeFileSync(
      join(clone, "Pulumi.dev.yaml"),
      readFileSync(join(root, "Pulumi.dev.yaml"), "utf8") + Object.entries(extra).map(([k, v]) => `  trading:${k}: "${v}"\n`).join(""),
    );
  /** `docker ps --format '{{.Names}}\t{{.Ports}}'` answering LINES; anything else is a run that went too far. */
  const dockerPs = (...lines: string[]) =>
    fakeDocker(lines);

  beforeEach(() => {
    copy("scripts/lib/check-host-ports.sh", "scripts/lib/host-ports.ts", "scripts/lib/stack-containers.ts", "stacks", "catalog", "images/versions.json", "package.json", "tsconfig.json");
    symlinkSync(join(root, "node_modules"), join(clone, "node_modules"));
    dockerPs();
  });

  it(
    "up stops before the builds, naming the port, its config key and how to move it",
    async () => {
      upUntilTheBuilds();
      const https = await held();
      settings({ httpPort: String(await free()), httpsPort: String(https), publishAdminPorts: "false" });
      const r = await run(["scripts/up.sh", "dev"]);
      expect(r.status, r.err).toBe(1);
      expect(r.err).toContain(`[up] ERROR: host port ${https} on 127.0.0.1, which stack dev publishes for the edge (Nginx, HTTPS), is taken (EADDRINUSE) by another program`);
      expect(r.err).toContain(`pulumi config set --stack dev trading:httpsPort <a free port> (the key trading:httpsPort of Pulumi.dev.yaml)`);
      expect(r.err).toContain("stopped before the builds");
      expect(existsSync(join(dir, "images-started"))).toBe(false); // before: the builds ran, pulumi up found it after them
      expect(existsSync(join(dir, "toolchain-started"))).toBe(false);
    },
    SLOW,
  );

  it(
    "a port held by the stack's own container (a second npm run up, a rerun) is fine; another container's is named",
    async () => {
      const http = await held();
      const https = await held();
      settings({ httpPort: String(http), httpsPort: String(https), publishAdminPorts: "false" });
      dockerPs(`ai-trading-dev-nginx\t127.0.0.1:${http}->8080/tcp, 127.0.0.1:${https}->8443/tcp`, "ai-trading-dev-postgres\t127.0.0.1:15432->5432/tcp");
      const ours = await run(["scripts/lib/check-host-ports.sh", "dev"]);
      expect(ours.err).toBe("");
      expect(ours.status).toBe(0);

      dockerPs(`ai-trading-dev-nginx\t127.0.0.1:${http}->8080/tcp`, `someone-elses-proxy\t0.0.0.0:${https}->443/tcp, :::${https}->443/tcp`);
      const theirs = await run(["scripts/lib/check-host-ports.sh", "dev"]);
      expect(theirs.status).toBe(1);
      expect(theirs.err).toContain(`host port ${https} on 127.0.0.1`);
      expect(theirs.err).toContain("by Docker container someone-elses-proxy, not one of stack dev's (docker stop someone-elses-proxy)");
      expect(theirs.err).not.toContain(`host port ${http} `);
      expect(existsSync(join(dir, "docker-calls"))).toBe(false);
    },
    SLOW,
  );

  it(
    "the admin ports: taken on adminBindAddress, or an address this host lacks, named with the keys that move them",
    async () => {
      // 127.0.0.3: a loopback address of its own, so that this machine's own 15432 is not in the way.
      await held("127.0.0.3", 15432);
      settings({ httpPort: String(await free()), httpsPort: String(await free()), adminBindAddress: "127.0.0.3" });
      const taken = await run(["scripts/lib/check-host-ports.sh", "dev"]);
      expect(taken.status).toBe(1);
      expect(taken.err).toContain("host port 15432 on 127.0.0.3, which stack dev publishes for postgres (admin port), is taken (EADDRINUSE) by another program");
      expect(taken.err).toContain("pulumi config set --stack dev trading:adminBindAddress <address>");
      expect(taken.err).toContain("pulumi config set --stack dev trading:publishAdminPorts false");
      expect(taken.err.match(/ERROR/g)).toHaveLength(1); // the other admin ports are free there

      // A private address no host here has (the stack config refuses a public one, TEST-NET-1 included, since session 50).
      settings({ httpPort: String(await free()), httpsPort: String(await free()), adminBindAddress: "10.199.254.253" });
      const absent = await run(["scripts/lib/check-host-ports.sh", "dev"]);
      expect(absent.status).toBe(1);
      expect(absent.err).toContain("trading:adminBindAddress 10.199.254.253 of stack dev is not an address of this host");
    },
    SLOW,
  );

  it(
    "a configuration the program would refuse is named now, with its key and stack, not after the builds",
    async () => {
      settings({ httpPort: "8443", httpsPort: "8443" });
      const r = await run(["scripts/lib/check-host-ports.sh", "dev"]);
      expect(r.status).toBe(2);
      expect(r.err).toContain("Invalid configuration trading:httpsPort on stack 'dev': must differ from httpPort");
    },
    SLOW,
  );
});

describe("npm test, npm run e2e, npm run down and npm run e2e:k8s stopped with SIGTERM while a step runs (session 44)", () => {
  const pidsIn = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8").trim().split("\n").filter(Boolean).map(Number) : []);
  /** A step that runs 30 s, with a child of its own; both pids recorded. */
  const longStep = () => `echo $$ >> "${join(dir, "step-pids")}"; sleep 30 & echo $! >> "${join(dir, "step-pids")}"; wait $!; touch "${join(dir, "step-finished")}"`;
  async function killedMidStep(args: string[]) {
    const child = spawn("bash", args, { cwd: clone, detached: true, env: env() });
    pids.push(child.pid!);
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdout.resume();
    const exited = new Promise<number | null>((res) => child.on("exit", (c) => res(c)));
    await until("the long step", () => pidsIn("step-pids").length === 2, 30_000, () => `: ${err}`);
    const step = pidsIn("step-pids");
    pids.push(...step);
    process.kill(child.pid!, "SIGTERM");
    const code = await Promise.race([exited, new Promise<"still running">((res) => setTimeout(() => res("still running"), STOPPED_WITHIN_MS))]);
    expect(code, err).toBe(143);
    await until("the step to end", () => !step.some(alive), STOPPED_WITHIN_MS, () => `: ${err}`); // before: bash died, the step went on
    expect(existsSync(join(dir, "step-finished"))).toBe(false);
    return err;
  }

  it("npm test (scripts/test.sh): the step under way stops with the run", async () => {
    copy("scripts/test.sh", "scripts/lib/steps.sh");
    script("scripts/weaviate/build.sh", `echo "${join(dir, "weaviate")}"`); // cached: no background build
    script("scripts/deps/install-test-deps.sh", longStep());
    const err = await killedMidStep(["scripts/test.sh"]);
    expect(err).toContain("[test] stopping the step under way (SIGTERM to its process group");
  });

  it("npm run e2e (scripts/e2e.sh): the step under way stops with the run", async () => {
    copy("scripts/e2e.sh", "scripts/lib/steps.sh", "scripts/lib/local-images.sh");
    script("scripts/docker/ensure-dockerd.sh", longStep());
    const err = await killedMidStep(["scripts/e2e.sh"]);
    expect(err).toContain("[e2e] stopping the step under way (SIGTERM to its process group");
  });

  it("npm run down (scripts/down.sh): pulumi destroy under way is stopped with the run", async () => {
    copy("scripts/down.sh", "scripts/lib/steps.sh", "scripts/lib/stack-config.sh", "scripts/lib/pulumi-env.sh", "scripts/lib/local-images.sh", "scripts/lib/locks.sh", "Pulumi.dev.yaml");
    fake("pulumi", `if [ "$1" = destroy ]; then ${longStep()}; fi`);
    fake("docker", `echo "$*" >> "${join(dir, "docker-calls")}"`);
    const err = await killedMidStep(["scripts/down.sh", "dev"]);
    expect(err).toContain("[down] stopping the step under way (SIGTERM to its process group");
  });

  it("npm run e2e:k8s (scripts/e2e-k8s.sh): the step stops, and the cluster it started is stopped", async () => {
    copy("scripts/e2e-k8s.sh", "scripts/lib/steps.sh");
    for (const s of ["scripts/cluster/build.sh", "scripts/docker/ensure-dockerd.sh", "scripts/lib/npm-install.sh", "scripts/tools/build-pulumi-tools.sh", "scripts/cluster/platform-images.sh"]) script(s, "exit 0");
    script("scripts/cluster/start.sh", longStep());
    script("scripts/cluster/stop.sh", `touch "${join(dir, "cluster-stopped")}"`);
    const err = await killedMidStep(["scripts/e2e-k8s.sh"]);
    expect(err).toContain("[e2e-k8s] stopping the step under way (SIGTERM to its process group");
    expect(err).toContain("[e2e-k8s] interrupted: stopping the cluster this run started");
    expect(existsSync(join(dir, "cluster-stopped"))).toBe(true);
  });
});

describe("the cluster's start on a loaded machine: a probe that hangs (session 44)", () => {
  it("wait_for gives up after K8S_START_TIMEOUT seconds of the clock, naming the daemon, even when its probe never answers", async () => {
    copy("scripts/cluster/start.sh");
    // wait_for as start.sh defines it (the script itself needs root and the cluster's binaries), with
    // a probe that hangs as curl does on a daemon that accepts and never answers.
    const t0 = Date.now();
    const r = await run([
      "-c",
      `set -euo pipefail; RUN_DIR="${join(dir, "run")}"; TIMEOUT=2
die() { echo "[cluster] ERROR: $*" >&2; exit 1; }; log_tail() { :; }; running() { return 0; }
eval "$(sed -n '/^wait_for() {/,/^}/p' scripts/cluster/start.sh)"
wait_for kube-apiserver sleep 1000`,
    ]);
    expect(r.status, r.err).toBe(1); // before: the probe held the wait for ever (here: stopped by the runner after 120 s)
    expect(r.err).toContain("[cluster] ERROR: kube-apiserver not ready after 2s");
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
});

describe("services/scripts/prepare-npm-cache.sh with two clones sharing the cache (session 44)", () => {
  it("another clone's npm run leaves this clone's .npm-cache (the services image's build context) as it was", async () => {
    copy("services/scripts/prepare-npm-cache.sh", "services/package.json", "services/package-lock.json", "scripts/lib/locks.sh");
    // npm as cacache behaves: a package is written to a new file and renamed into place; an index
    // bucket is appended to in place, on every run.
    fake(
      "npm",
      `cache=""; for a in "$@"; do case $prev in --cache) cache=$a ;; esac; prev=$a; done
mkdir -p "$cache/_cacache/index-v5/ab/cd" "$cache/_cacache/content-v2/sha512/12"
echo "run $$ $(date +%s%N)" >> "$cache/_cacache/index-v5/ab/cd/bucket"
echo package > "$cache/_cacache/content-v2/sha512/12/tmp.$$" && mv "$cache/_cacache/content-v2/sha512/12/tmp.$$" "$cache/_cacache/content-v2/sha512/12/blob"`,
    );
    const first = await run(["services/scripts/prepare-npm-cache.sh"]);
    expect(first.status, first.err).toBe(0);
    const bucket = join(clone, "services/.npm-cache/_cacache/index-v5/ab/cd/bucket");
    const before = readFileSync(bucket, "utf8");
    // Another clone (the same script, the same TRADING_CACHE_DIR) prepares its own copy.
    const other = join(dir, "other clone");
    cpSync(clone, other, { recursive: true });
    rmSync(join(other, "services/.npm-cache"), { recursive: true, force: true });
    const second = await runCommand("bash", ["services/scripts/prepare-npm-cache.sh"], { cwd: other, timeoutMs: 120_000, env: env() });
    expect(second.status, second.stderr).toBe(0);
    expect(readFileSync(join(cache, "npm-services/_cacache/index-v5/ab/cd/bucket"), "utf8").split("\n").filter(Boolean)).toHaveLength(2);
    expect(readFileSync(bucket, "utf8")).toBe(before); // before: hard-linked, it had the other run's line too
    expect(readFileSync(join(clone, "services/.npm-cache/_cacache/content-v2/sha512/12/blob"), "utf8")).toBe("package\n");
  });
});
