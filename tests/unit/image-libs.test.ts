/**
 * Session 45's secrets hunt: the local images' reading of `<NAME>_FILE` (file_env) was one shell
 * function copied into the PostgreSQL, Redis and ClickHouse entrypoints (each build context is its
 * own folder), and Weaviate's entrypoint had a fourth, hand-written one. It is one file now,
 * images/lib/file-env.sh, which scripts/images/build-images.sh stages into the build context of
 * each image whose Dockerfile says `# image-lib: file-env.sh`, its content part of that image's key.
 * The build runs as in newcomer-scripts.test.ts: the real script in a copy of the files it needs,
 * a fake docker first on PATH that records each build's arguments (nothing is built).
 */
import { appendFileSync, chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { run as runCommand } from "../harness/run";

const root = resolve(__dirname, "../..");
const USERS = ["clickhouse", "postgres", "redis", "weaviate"];

let dir: string;
let clone: string;
let fakes: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "image libs "));
  clone = join(dir, "my clone");
  fakes = join(dir, "fakes");
  mkdirSync(fakes, { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function copy(...paths: string[]) {
  for (const p of [...paths, "scripts/lib/cache-dir.sh"]) {
    mkdirSync(dirname(join(clone, p)), { recursive: true });
    cpSync(join(root, p), join(clone, p), { recursive: true });
  }
}
function executable(path: string, body: string) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `#!/bin/bash\n${body}\n`);
  chmodSync(path, 0o755);
}
async function run(args: string[]) {
  const r = await runCommand("bash", args, {
    cwd: clone,
    timeoutMs: 120_000,
    env: { HOME: dir, PATH: `${fakes}:/usr/bin:/bin`, TRADING_CACHE_DIR: join(dir, "cache"), GO_FALLBACK_DIRS: "" },
  });
  return { status: r.status, err: r.stderr };
}

describe("images/lib/file-env.sh, the one source of the entrypoints' file_env (session 45)", () => {
  beforeEach(() => {
    copy("scripts/images", "scripts/docker/ensure-dockerd.sh", "scripts/lib/local-images.sh", "scripts/lib/locks.sh", "images/lib", "images/nginx",
      ...USERS.map((n) => `images/${n}`));
    // The Weaviate server's Go build: a file already built.
    writeFileSync(join(dir, "weaviate-server"), "binary");
    executable(join(clone, "scripts/weaviate/build.sh"), `echo "${join(dir, "weaviate-server")}"`);
    // The engine: every build's arguments and the file-env.sh its context holds, one line each.
    executable(
      join(fakes, "docker"),
      `case "$1" in
  info|network) exit 0 ;;
  build) ctx="\${@: -1}"; echo "$(basename "$ctx") $* staged=$(sha256sum < "$ctx/.stage/lib/file-env.sh" 2>/dev/null | cut -c1-12)" >> "${join(dir, "builds")}" ;;
  image) case "$*" in *Size*) echo 1000 ;; *Id*) echo sha256:base ;; esac ;;
esac`,
    );
    executable(join(fakes, "dockerd"), "exit 1");
  });
  const builds = () => {
    const out = new Map<string, { hash: string; staged: string }>();
    for (const l of readFileSync(join(dir, "builds"), "utf8").trim().split("\n")) {
      out.set(l.split(" ")[0], { hash: /ai-trading\.hash=(\S+)/.exec(l)![1], staged: /staged=(\S*)/.exec(l)![1] });
    }
    rmSync(join(dir, "builds"));
    return out;
  };
  const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex").slice(0, 12);

  it("a change to the shared file changes the key of each image that uses it, and of no other; each context holds the file", async () => {
    const names = [...USERS, "nginx"];
    const first = await run(["scripts/images/build-images.sh", ...names]);
    expect(first.status, first.err).toBe(0);
    const before = builds();
    for (const n of USERS) expect(before.get(n)?.staged, n).toBe(sha(join(clone, "images/lib/file-env.sh")));

    // An edit that keeps the size (the staged files' sizes were the key's only view of .stage/).
    const lib = join(clone, "images/lib/file-env.sh");
    writeFileSync(lib, readFileSync(lib, "utf8").replace("set only one", "set just one"));
    const second = await run(["scripts/images/build-images.sh", ...names]);
    expect(second.status, second.err).toBe(0);
    const after = builds();
    for (const n of USERS) {
      expect(after.get(n)!.hash, `${n}'s key`).not.toBe(before.get(n)!.hash); // before: the same key, the image kept
      expect(after.get(n)!.staged, n).toBe(sha(lib));
    }
    expect(after.get("nginx")!.hash).toBe(before.get("nginx")!.hash);
    expect(existsSync(join(clone, "images/nginx/.stage/lib"))).toBe(false);
  });

  it("a Dockerfile naming a shared file that does not exist stops its build, naming both", async () => {
    appendFileSync(join(clone, "images/redis/Dockerfile"), "# image-lib: no-such.sh\n");
    const r = await run(["scripts/images/build-images.sh", "redis"]);
    expect(r.status).not.toBe(0);
    expect(r.err).toContain("redis: its Dockerfile declares image-lib no-such.sh, and images/lib/no-such.sh does not exist");
  });
});

describe("the local images' entrypoints and file_env (session 45)", () => {
  const entrypoints = readdirSync(join(root, "images")).filter((n) => existsSync(join(root, "images", n, "docker-entrypoint.sh")));

  it("no entrypoint carries its own copy; each that reads a _FILE sources the shared one, which its Dockerfile stages and copies", () => {
    const readers: string[] = [];
    for (const n of entrypoints) {
      const sh = readFileSync(join(root, "images", n, "docker-entrypoint.sh"), "utf8");
      const df = readFileSync(join(root, "images", n, "Dockerfile"), "utf8");
      expect(sh, n).not.toMatch(/file_env\s*\(\)/);
      if (!/_FILE\b/.test(sh)) continue;
      readers.push(n);
      expect(sh, n).toMatch(/^#!\/bin\/bash/);
      expect(sh, n).toContain("source /usr/local/lib/ai-trading/file-env.sh");
      expect(df, n).toMatch(/^# image-lib: file-env\.sh$/m);
      expect(df, n).toContain("COPY .stage/lib/file-env.sh /usr/local/lib/ai-trading/file-env.sh");
    }
    expect(readers.sort()).toEqual(USERS);
  });

  /** bash: source the shared file, then SCRIPT; the environment ENV only. */
  const bash = (script: string, env: Record<string, string>) =>
    runCommand("bash", ["-c", `set -euo pipefail; source "${join(root, "images/lib/file-env.sh")}"; ${script}`], { env: { PATH: "/usr/bin:/bin", ...env } });

  it("reads the file into a shell variable it does not export, and unsets NAME_FILE", async () => {
    const f = join(dir, "pw");
    writeFileSync(f, "s3cret-value\n");
    const r = await bash('file_env DB_PASSWORD; echo "[$DB_PASSWORD] [${DB_PASSWORD_FILE:-unset}]"; env | grep -c "^DB_PASSWORD" || true', { DB_PASSWORD_FILE: f });
    expect(r.stdout.trim().split("\n")).toEqual(["[s3cret-value] [unset]", "0"]);
  });

  it("stops naming the variables, never the content: both set, a missing, unreadable or empty file", async () => {
    const f = join(dir, "pw");
    writeFileSync(f, "s3cret-value");
    const both = await bash("file_env DB_PASSWORD; echo went-on", { DB_PASSWORD: "other-s3cret", DB_PASSWORD_FILE: f });
    expect(both.status).toBe(1);
    expect(both.stderr).toContain("DB_PASSWORD and DB_PASSWORD_FILE are both set");
    expect(both.stdout + both.stderr).not.toMatch(/s3cret/);
    writeFileSync(join(dir, "empty"), "");
    for (const path of [join(dir, "missing"), join(dir, "empty")]) {
      const r = await bash("file_env DB_PASSWORD; echo went-on", { DB_PASSWORD_FILE: path });
      expect(r.status, path).toBe(1);
      expect(r.stderr).toContain(`DB_PASSWORD_FILE names ${path}, which is missing, unreadable or empty`);
    }
    const none = await bash('file_env DB_PASSWORD; echo "[${DB_PASSWORD:-}]"', {});
    expect(none.stdout.trim()).toBe("[]");
  });
});
