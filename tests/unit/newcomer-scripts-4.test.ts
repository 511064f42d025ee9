/**
 * The set-up scripts as a newcomer or a careless operator meets them, round 4 (session 45's newcomer
 * hunt): `npm run up` from a real terminal (a pseudo-terminal of util-linux's `script`, keys typed
 * into it), a second clone of the repo whose dev stack runs. As in newcomer-scripts-3.test.ts, each
 * runs the real script with bash in a copy of the files it needs (a folder whose path holds a
 * space), with fakes first on PATH: nothing here installs, builds, or talks to this machine's Docker
 * engine, and no real cache is touched.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { run as runCommand } from "../harness/run";
import { alive, cache, clone, copy, dir, env, fake, fakes, pids, root, run, script, until, upUntilTheBuilds, useNewcomerSandbox, fakeDocker } from "../helpers/newcomer-sandbox";

useNewcomerSandbox();
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

describe("run_step's way off the terminal, where it is not needed (session 45)", () => {
  it("a machine without the locale asked for gets no perl warning with each step, and the step's environment is as it was", async () => {
    copy("scripts/lib/steps.sh");
    const step = `run_step t bash -c 'echo "PERL_BADLANG=\${PERL_BADLANG-unset}"; env | grep -c _STEP_ || true'`;
    const r = await run(["-c", `source scripts/lib/steps.sh; ${step}`], { LC_ALL: "xx_YY.UTF-8", LANG: "xx_YY.UTF-8" });
    expect(r.status, r.err).toBe(0);
    expect(r.err).not.toContain("perl: warning");
    expect(r.out).toBe("PERL_BADLANG=unset\n0\n");
    const set = await run(["-c", `source scripts/lib/steps.sh; ${step}`], { PERL_BADLANG: "1" });
    expect(set.out).toBe("PERL_BADLANG=1\n0\n");
  });

  it("a step run with no terminal at all (CI, cron) runs as before; one that does not exist fails with 127, naming it", async () => {
    copy("scripts/lib/steps.sh");
    const r = await run(["-c", `source scripts/lib/steps.sh; run_step t bash -c 'echo ran; test -t 0 || echo "stdin is not a terminal"'; rc=0; run_step t no-such-command-here || rc=$?; echo "rc=$rc"`]);
    expect(r.out).toBe("ran\nstdin is not a terminal\nrc=127\n");
    expect(r.err).toContain("cannot run no-such-command-here: No such file or directory");
  });
});

describe("npm run up beside a second clone whose stack runs (session 45)", () => {
  // tsx and the stack's parser on a loaded machine: 5 s alone, 14 s measured beside other runs.
  const SLOW = 120_000;
  const other = () => join(dir, "other clone");
  /** `docker ps --all --no-trunc --format '{{.Names}}\t{{.Ports}}\t{{.ID}}\t{{.State}}\t{{.Label "trading.io/pulumi-state"}}'` answering LINES; any other call is recorded. */
  const dockerPs = (...lines: string[][]) => fakeDocker(lines.map((l) => l.join("\t")));
  const id = (n: number) => String(n).repeat(64).slice(0, 64);
  /** This clone's state for stack dev as Pulumi's file backend keeps it, recording the container ids IDS. */
  function state(...ids: string[]) {
    const file = join(clone, ".pulumi-state/.pulumi/stacks/trading/dev.json");
    mkdirSync(dirname(file), { recursive: true });
    const resources = ids.map((i, n) => ({ urn: `urn:pulumi:dev::trading::docker:index/container:Container::c${n}`, custom: true, id: i, type: "docker:index/container:Container" }));
    writeFileSync(file, JSON.stringify({ version: 3, checkpoint: { stack: "organization/trading/dev", latest: { resources } } }));
  }
  const settings = (extra: Record<string, string>) =>
    writeFileSync(join(clone, "Pulumi.dev.yaml"), readFileSync(join(root, "Pulumi.dev.yaml"), "utf8") + Object.entries(extra).map(([k, v]) => `  trading:${k}: "${v}"\n`).join(""));

  beforeEach(() => {
    copy("scripts/lib/check-host-ports.sh", "scripts/lib/host-ports.ts", "scripts/lib/stack-containers.ts", "stacks", "catalog", "images/versions.json", "package.json", "tsconfig.json", "Pulumi.yaml");
    symlinkSync(join(root, "node_modules"), join(clone, "node_modules"));
    // No port published: only the names are in the way.
    settings({ publishAdminPorts: "false", httpPort: "1", httpsPort: "2" });
  });

  it(
    "up stops before the builds, naming the other clone's containers, its path and what to do",
    async () => {
      upUntilTheBuilds();
      // The other clone's dev stack, labelled by the Docker runtime with its state; one stopped container too.
      const theirs = join(other(), ".pulumi-state");
      dockerPs(["ai-trading-dev-postgres", "", id(1), "running", theirs], ["ai-trading-dev-migrate", "", id(2), "exited", theirs], ["someone-else", "", id(3), "running", ""]);
      const r = await run(["scripts/up.sh", "dev"]);
      expect(r.status, r.err).toBe(1);
      expect(r.err).toContain(`[up] ERROR: Docker containers ai-trading-dev-migrate, ai-trading-dev-postgres of stack dev were deployed by the clone at ${other()}, not from this clone's state (${join(clone, ".pulumi-state")})`);
      expect(r.err).toContain(`take that stack down there (cd '${other()}' && npm run down)`);
      expect(r.err).toContain("run this clone as another stack (cp Pulumi.dev.yaml Pulumi.<name>.yaml");
      expect(r.err).not.toContain("someone-else");
      expect(r.err).toContain("stopped before the builds");
      expect(existsSync(join(dir, "images-started"))).toBe(false);
      expect(existsSync(join(dir, "toolchain-started"))).toBe(false); // before: the builds ran, and pulumi up failed on the names after them
    },
    SLOW,
  );

  it(
    "this clone's containers pass: by their label, or recorded in its state (deployed before the label); unlabelled ones its state lacks are named",
    async () => {
      const backend = { PULUMI_BACKEND_URL: `file://${join(clone, ".pulumi-state")}` };
      dockerPs(["ai-trading-dev-postgres", "", id(1), "running", join(clone, ".pulumi-state")], ["ai-trading-dev-nginx", "", id(2), "running", "<no value>"]);
      state(id(2));
      const ours = await run(["scripts/lib/check-host-ports.sh", "dev"], backend);
      expect(ours.err).toBe("");
      expect(ours.status).toBe(0);

      state(); // a state that does not record ai-trading-dev-nginx: another clone's from before the label
      const unknown = await run(["scripts/lib/check-host-ports.sh", "dev"], backend);
      expect(unknown.status).toBe(1); // before: 0, taken for ours by its name
      expect(unknown.err).toContain(`Docker container ai-trading-dev-nginx of stack dev is not in this clone's state (${join(clone, ".pulumi-state")}) and carries no trading.io/pulumi-state label`);
      expect(unknown.err).toContain("npm run down there");
      expect(unknown.err).not.toContain("ai-trading-dev-postgres");
      expect(existsSync(join(dir, "docker-calls"))).toBe(false);
    },
    SLOW,
  );
});

describe("npm run up over the volumes and network of a deployment whose containers were removed by hand (session 46)", () => {
  const backend = () => ({ PULUMI_BACKEND_URL: `file://${join(clone, ".pulumi-state")}` });
  /** This clone's state for stack dev recording the volumes and networks named (a network's id is the engine's). */
  function state(volumes: string[], networks: string[]) {
    const file = join(clone, ".pulumi-state/.pulumi/stacks/trading/dev.json");
    mkdirSync(dirname(file), { recursive: true });
    const resources = [
      ...volumes.map((v) => ({ urn: `urn:pulumi:dev::trading::docker:index/volume:Volume::${v}`, custom: true, id: v, type: "docker:index/volume:Volume", outputs: { name: v } })),
      ...networks.map((n) => ({ urn: `urn:pulumi:dev::trading::docker:index/network:Network::${n}`, custom: true, id: "9".repeat(64), type: "docker:index/network:Network", outputs: { name: n } })),
    ];
    writeFileSync(file, JSON.stringify({ version: 3, checkpoint: { stack: "organization/trading/dev", latest: { resources } } }));
  }

  beforeEach(() => {
    copy("scripts/lib/check-host-ports.sh", "scripts/lib/host-ports.ts", "scripts/lib/stack-containers.ts", "stacks", "catalog", "images/versions.json", "package.json", "tsconfig.json", "Pulumi.yaml");
    symlinkSync(join(root, "node_modules"), join(clone, "node_modules"));
    writeFileSync(join(clone, "Pulumi.dev.yaml"), readFileSync(join(root, "Pulumi.dev.yaml"), "utf8") + '  trading:publishAdminPorts: "false"\n  trading:httpPort: "1"\n  trading:httpsPort: "2"\n');
  });

  it(
    "stops before the builds naming the volumes and network its state lacks, and how to remove them; its own pass",
    async () => {
      // Another clone's stack, its containers removed with docker rm -f: its volumes and network stay. Other projects' too.
      fakeDocker([], { volumes: ["ai-trading-dev-postgres-data", "ai-trading-dev-redis-data", "someone-elses-data"], networks: ["bridge", "ai-trading-dev-net", "host"] });
      state([], []); // a fresh clone: its state holds no dev stack yet
      const r = await run(["scripts/lib/check-host-ports.sh", "dev"], backend());
      expect(r.status, r.err).toBe(1); // before: 0, and pulumi up took the volumes over (session 46: the plugin refuses them, after the builds)
      expect(r.err).toContain(
        "[up] ERROR: Docker volumes ai-trading-dev-postgres-data, ai-trading-dev-redis-data and network ai-trading-dev-net of stack dev are not in this clone's state: a deployment whose containers were removed by hand (docker rm -f, not npm run down) left them",
      );
      expect(r.err).toContain("remove them (docker volume rm ai-trading-dev-postgres-data ai-trading-dev-redis-data; docker network rm ai-trading-dev-net)");
      expect(r.err).not.toContain("someone-elses-data");
      expect(r.err).toContain("stopped before the builds");

      // This clone's own (its state records them): nothing said.
      state(["ai-trading-dev-postgres-data", "ai-trading-dev-redis-data"], ["ai-trading-dev-net"]);
      const ours = await run(["scripts/lib/check-host-ports.sh", "dev"], backend());
      expect([ours.status, ours.err]).toEqual([0, ""]);
      expect(existsSync(join(dir, "docker-calls"))).toBe(false);
    },
    120_000,
  );
});

describe("npm run e2e beside a dev stack that runs (session 45)", () => {
  it("stops before the builds, naming the containers and the clone to take them down in", async () => {
    copy("scripts/e2e.sh", "scripts/lib/steps.sh", "scripts/lib/local-images.sh");
    script("scripts/docker/ensure-dockerd.sh", "exit 0");
    script("scripts/lib/npm-install.sh", `touch "${join(dir, "npm-step")}"`);
    for (const s of ["scripts/tools/build-pulumi-tools.sh", "scripts/images/build-images.sh", "services/scripts/prepare-npm-cache.sh", "scripts/ml/prepare-wheels.sh"]) script(s, `touch "${join(dir, "built")}"`);
    const theirs = join(dir, "other clone");
    fake("docker", `[ "$1" = ps ] && printf '%s\\t%s\\n' ai-trading-dev-nginx "${theirs}/.pulumi-state" ai-trading-dev-postgres "${theirs}/.pulumi-state" unrelated-dev-thing "<no value>"`);
    const r = await run(["scripts/e2e.sh"]);
    expect(r.status, r.err).toBe(1);
    expect(r.err).toContain("[e2e] ERROR: the e2e suite deploys stack dev itself, and this Docker engine has dev's containers already (ai-trading-dev-nginx ai-trading-dev-postgres)");
    expect(r.err).toContain(`Take that stack down first (the clone at ${theirs}: cd '${theirs}' && npm run down), then run again`);
    expect(existsSync(join(dir, "npm-step"))).toBe(false); // before: the builds ran, and the suite's beforeAll said so after them
    expect(existsSync(join(dir, "built"))).toBe(false);
  });
});

describe("npm run e2e over a dev stack's volumes and network left by docker rm -f (session 46)", () => {
  it("stops before the builds, naming them and how to remove them", async () => {
    copy("scripts/e2e.sh", "scripts/lib/steps.sh", "scripts/lib/local-images.sh");
    script("scripts/docker/ensure-dockerd.sh", "exit 0");
    script("scripts/lib/npm-install.sh", `touch "${join(dir, "npm-step")}"`);
    fakeDocker([], { volumes: ["ai-trading-dev-redis-data", "ai-trading-dev-postgres-data", "other-data"], networks: ["bridge", "ai-trading-dev-net"] });
    const r = await run(["scripts/e2e.sh"]);
    expect(r.status, r.err).toBe(1);
    expect(r.err).toContain(
      "[e2e] ERROR: the e2e suite deploys stack dev itself, and this Docker engine has dev's volumes ai-trading-dev-postgres-data ai-trading-dev-redis-data and network ai-trading-dev-net with no container left",
    );
    expect(r.err).toContain("remove them (docker volume rm ai-trading-dev-postgres-data ai-trading-dev-redis-data; docker network rm ai-trading-dev-net), then run again");
    expect(existsSync(join(dir, "npm-step"))).toBe(false); // before: the builds ran, and the suite's deploy stopped on them after
    // The network alone (its volumes removed): said the same way.
    fakeDocker([], { networks: ["ai-trading-dev-net"] });
    const net = await run(["scripts/e2e.sh"]);
    expect(net.err).toContain("this Docker engine has dev's network ai-trading-dev-net with no container left");
    expect(net.err).toContain("remove them (docker network rm ai-trading-dev-net), then run again");
    // None: on to the steps.
    fakeDocker([]);
    script("scripts/tools/build-pulumi-tools.sh", "exit 3");
    const none = await run(["scripts/e2e.sh"]);
    expect(none.err).not.toContain("with no container left");
    expect(existsSync(join(dir, "npm-step"))).toBe(true);
  });
});

describe("a full disk while a run writes what it keeps (session 45)", () => {
  // The disk fills: a write fails after its file was opened (and emptied). `ulimit -f 0` makes every
  // write of a file fail (EFBIG, with SIGXFSZ ignored) as ENOSPC does, without filling a disk.
  const FULL = `trap '' XFSZ; ulimit -f 0`;

  it("the passphrase's fingerprint in .pulumi-state is kept, and the next run is not refused", async () => {
    copy("scripts/lib/pulumi-env.sh");
    const state = join(clone, ".pulumi-state");
    mkdirSync(join(state, ".pulumi/stacks/trading"), { recursive: true });
    writeFileSync(join(state, ".pulumi/stacks/trading/dev.json"), "{}");
    mkdirSync(cache, { recursive: true });
    writeFileSync(join(cache, "pulumi-passphrase"), "the passphrase\n", { mode: 0o600 });
    const first = await run(["-c", "set -euo pipefail; source scripts/lib/pulumi-env.sh; pulumi_env_record_passphrase"]);
    expect(first.status, first.err).toBe(0);
    const fingerprint = readFileSync(join(state, ".passphrase-sha256"), "utf8");
    expect(fingerprint).toMatch(/^sha256:[0-9a-f]{64} /);

    // `npm run up` records it after pulumi up; the disk is full by then.
    const full = await run(["-c", `set -euo pipefail; source scripts/lib/pulumi-env.sh; ${FULL}; pulumi_env_record_passphrase`]);
    expect(full.status).toBe(1);
    expect(full.err).toContain(`could not write the passphrase's fingerprint ${join(state, ".passphrase-sha256")}`);
    expect(readFileSync(join(state, ".passphrase-sha256"), "utf8")).toBe(fingerprint); // before: emptied

    const next = await run(["-c", "set -euo pipefail; source scripts/lib/pulumi-env.sh; echo ready"]);
    expect(next.err).not.toContain("ERROR"); // before: "made with the passphrase from , not the one from ..."
    expect(next.status).toBe(0);

    // A fingerprint emptied so by an earlier run is not taken for another passphrase's.
    writeFileSync(join(state, ".passphrase-sha256"), "");
    const damaged = await run(["-c", "set -euo pipefail; source scripts/lib/pulumi-env.sh; echo ready"]);
    expect(damaged.status, damaged.err).toBe(0);
    expect(damaged.err).toContain("keeps no fingerprint (emptied or cut short, a full disk?): not used; the next pulumi up records it again");
  });

  it("the stack's private config copy (its encryption salt) is kept, and the run stops naming it", async () => {
    copy("scripts/lib/stack-config.sh", "Pulumi.dev.yaml");
    const copyFile = join(clone, ".pulumi-state/stack-config/Pulumi.dev.yaml");
    mkdirSync(dirname(copyFile), { recursive: true });
    const kept = `encryptionsalt: v1:c2FsdA==:v1:aXY=:dGFn\n${readFileSync(join(root, "Pulumi.dev.yaml"), "utf8")}`;
    writeFileSync(copyFile, kept);
    const backend = { PULUMI_BACKEND_URL: `file://${join(clone, ".pulumi-state")}` };
    // As up.sh and down.sh call it.
    const r = await run(["-c", `set -euo pipefail; source scripts/lib/stack-config.sh; ${FULL}; config_file=$(stack_config_file dev); echo "pulumi up --config-file $config_file"`], backend);
    expect(r.out).not.toContain("pulumi up --config-file"); // before: went on with the cut-short copy
    expect(r.status).toBe(1);
    expect(r.err).toContain(`ERROR: could not write stack dev's config copy ${copyFile} (a full disk?`);
    expect(readFileSync(copyFile, "utf8")).toBe(kept); // before: emptied, its salt lost
  });
});

describe("a lock held by a run that was stopped (Ctrl-Z in another terminal) (session 45)", () => {
  it("wait_for_lock gives up after LOCK_WAIT_SECONDS, naming the stopped holder and how to continue it", async () => {
    copy("scripts/lib/locks.sh");
    const lock = join(cache, "kafka/.lock-9.9.9");
    mkdirSync(dirname(lock), { recursive: true });
    // Another run's download of Kafka, holding its lock, stopped.
    const holder = spawn("flock", [lock, "sleep", "60"], { stdio: "ignore", detached: true });
    pids.push(holder.pid!);
    // flock forks, then the child execs sleep: until it has, the child's command line is still flock's.
    await until("the holder's lock", () => existsSync(lock) && pidsOfSleep(holder.pid!).some(isSleep));
    const sleeper = pidsOfSleep(holder.pid!).find(isSleep)!;
    pids.push(sleeper);
    process.kill(sleeper, "SIGSTOP");
    // The signal is delivered when the kernel next schedules the sleeper: on a loaded machine the lock's
    // message was written while it still showed as sleeping (S), not stopped (T).
    await until("the holder stopped", () => /^\d+ \(.*\) T/.test(readFileSync(`/proc/${sleeper}/stat`, "utf8")));
    const t0 = Date.now();
    const r = await runCommand("bash", ["-c", `set -euo pipefail; source scripts/lib/locks.sh; exec 9>>"${lock}"; wait_for_lock 9 "${lock}" "another download of Kafka 9.9.9"; echo got it`], {
      cwd: clone,
      timeoutMs: 30_000,
      env: env({ LOCK_WAIT_SECONDS: "2" }),
    });
    expect(r.status, r.stderr).toBe(1); // before: null, still waiting when stopped at 30 s
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(r.stdout).not.toContain("got it");
    expect(r.stderr).toContain("[lock] ERROR: gave up waiting for another download of Kafka 9.9.9 after 2s (LOCK_WAIT_SECONDS)");
    expect(r.stderr).toContain(`pid ${sleeper} (sleep 60) [stopped: it holds the lock until continued, with fg in its terminal or kill -CONT ${sleeper}]`);
  });
});

/** Whether PID runs `sleep` (a forked child that has not exec'd yet still shows its parent's command). */
function isSleep(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("sleep\0");
  } catch {
    return false;
  }
}

/** The pids of the children of PID (the `sleep` that flock runs). */
function pidsOfSleep(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
