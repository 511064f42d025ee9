/**
 * The set-up scripts behind `npm run up` and `npm test`: the locks that let both run at once
 * (scripts/lib/locks.sh) and what the toolchain build plans for each stack
 * (scripts/tools/build-pulumi-tools.sh --plan). Real bash and flock; synchronised through files,
 * never through sleeps.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const root = resolve(__dirname, "../..");
const locks = join(root, "scripts/lib/locks.sh");

let dir: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "setup-locks-"));
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a bash script with locks.sh sourced; resolves with its exit code and output. */
function bash(script: string, env: Record<string, string> = {}) {
  const child = spawn("bash", ["-c", `set -euo pipefail; source ${JSON.stringify(locks)}; ${script}`], {
    env: { ...process.env, TRADING_CACHE_DIR: dir, ...env },
  });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const done = new Promise<{ code: number | null; out: string; err: string }>((res) =>
    child.on("close", (code) => res({ code, out, err })),
  );
  return { done, stderr: () => err, stdout: () => out };
}

async function until(what: string, cond: () => boolean, ms = 30_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("scripts/lib/locks.sh", () => {
  it("a second holder waits for the first, says so, and runs once it is released", async () => {
    const held = join(dir, "held");
    const release = join(dir, "release");
    const first = bash(`hold_lock tools; touch ${held}; while [ ! -e ${release} ]; do sleep 0.05; done; echo first-done`);
    await until("the first holder", () => existsSync(held));
    const second = bash(`hold_lock tools; echo second-got-it`);
    await until("the second to wait", () => second.stderr().includes("waiting for 'tools'"));
    expect(second.stdout()).toBe("");
    expect(second.stderr()).toMatch(/pid \d+ \(bash\) since/); // names who holds it
    writeFileSync(release, "");
    expect((await first.done).code).toBe(0);
    const r = await second.done;
    expect(r.code).toBe(0);
    expect(r.out).toBe("second-got-it\n");
    expect(r.err).toMatch(/got 'tools' after \d+s/);
  });

  it("different locks do not wait for each other", async () => {
    const release = join(dir, "release");
    const held = join(dir, "held");
    const first = bash(`hold_lock a; touch ${held}; while [ ! -e ${release} ]; do sleep 0.05; done`);
    await until("the first holder", () => existsSync(held));
    const other = await bash(`hold_lock b; echo b`).done;
    expect(other).toMatchObject({ code: 0, out: "b\n" });
    writeFileSync(release, "");
    await first.done;
  });

  it("gives up after LOCK_WAIT_SECONDS, naming the lock", async () => {
    const release = join(dir, "release");
    const held = join(dir, "held");
    const first = bash(`hold_lock tools; touch ${held}; while [ ! -e ${release} ]; do sleep 0.05; done`);
    await until("the first holder", () => existsSync(held));
    const r = await bash(`hold_lock tools; echo never`, { LOCK_WAIT_SECONDS: "1" }).done;
    expect(r.code).not.toBe(0);
    expect(r.out).toBe("");
    expect(r.err).toContain("gave up waiting for 'tools' after 1s");
    writeFileSync(release, "");
    await first.done;
  });
});

describe("build-pulumi-tools.sh --plan", () => {
  const plan = (...args: string[]) =>
    spawnSync("bash", [join(root, "scripts/tools/build-pulumi-tools.sh"), "--plan", ...args], { encoding: "utf8" });
  const steps = (out: string) => out.trim().split("\n").map((l) => l.split("\t")[0]);

  it("builds only what the stack's target needs", () => {
    expect(steps(plan("dev").stdout)).toEqual(["cli", "langhost", "random", "docker"]);
    expect(steps(plan("prod").stdout)).toEqual(["cli", "langhost", "random", "docker", "kubernetes"]);
    expect(steps(plan().stdout)).toEqual(["cli", "langhost", "random", "docker", "kubernetes"]);
  });

  it("says why each step is there", () => {
    for (const line of plan("dev").stdout.trim().split("\n")) expect(line.split("\t")[2]).toMatch(/\w{4,}/);
  });

  it("refuses a stack without a target, naming it", () => {
    const r = plan("no-such-stack");
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("Pulumi.no-such-stack.yaml has no trading:target");
  });
});
