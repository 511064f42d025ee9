/**
 * The local images' tags carry a content key of their build inputs (scripts/images/image-tags.sh).
 * Before, a tag was the upstream version alone (postgres:15.20-local): two clones on one Docker
 * engine whose images/postgres/ differed built under one name, each build replaced the other's
 * image, and a deployment of one clone could run the other's entrypoint. The key is computed in
 * one place, the shell script; the program reads images/versions.json, which build-images.sh
 * writes and which is committed: the first case fails when it is stale.
 * The build runs as in image-libs.test.ts: the real script in copies of the files it needs, a fake
 * docker first on PATH, here one that keeps each tag's ai-trading.hash label (nothing is built).
 */
import { appendFileSync, chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { run as runCommand } from "../harness/run";
import { containerImage, LOCAL_REPOSITORY, localStandIns, type ImageName } from "../../stacks/images";

const root = resolve(__dirname, "../..");
const committed = JSON.parse(readFileSync(join(root, "images/versions.json"), "utf8")) as Record<string, string>;
const FILE_ENV_USERS = ["clickhouse", "postgres", "redis", "weaviate"];

describe("images/versions.json", () => {
  it("is what scripts/images/image-tags.sh computes from this clone's images/ (not stale)", async () => {
    const r = await runCommand("bash", ["scripts/images/image-tags.sh", "--check"], { cwd: root, env: { PATH: "/usr/bin:/bin" } });
    expect(r.status, r.stderr).toBe(0);
  });

  it("holds <upstream version>-local-<12 hex key> for every image, and the program references those tags", () => {
    for (const [name, tag] of Object.entries(committed)) expect(tag, name).toMatch(/^\d[\w.]*-local-[0-9a-f]{12}$/);
    for (const name of Object.keys(localStandIns) as ImageName[]) {
      const build = localStandIns[name]!.build;
      expect(containerImage(name, "local")!.ref, name).toBe(`${LOCAL_REPOSITORY}/${build}:${committed[build]}`);
    }
  });
});

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "image tags ")); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the files the tag script and the build need, in DIR/NAME. */
function clone(name: string): string {
  const c = join(dir, name);
  for (const p of ["images", "scripts/images", "scripts/docker/ensure-dockerd.sh", "scripts/lib/local-images.sh", "scripts/lib/locks.sh", "scripts/lib/cache-dir.sh"]) {
    mkdirSync(dirname(join(c, p)), { recursive: true });
    cpSync(join(root, p), join(c, p), { recursive: true, filter: (src) => !src.includes("/.stage") });
  }
  return c;
}
const tags = async (c: string) => {
  const r = await runCommand("bash", ["scripts/images/image-tags.sh"], { cwd: c, env: { PATH: "/usr/bin:/bin" } });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Record<string, string>;
};
const changed = (a: Record<string, string>, b: Record<string, string>) => Object.keys(a).filter((n) => a[n] !== b[n]).sort();

describe("the content key (scripts/images/image-tags.sh)", () => {
  it("is the same in another folder; an image's own file or a shared file it declares changes its key and no other", async () => {
    const a = clone("a");
    const base = await tags(a);
    expect(base).toEqual(committed);
    renameSync(a, join(dir, "elsewhere"));
    expect(await tags(join(dir, "elsewhere"))).toEqual(committed);
    const c = join(dir, "elsewhere");

    // Staged artefacts are not the key's (the pins name them; the build's label takes them).
    mkdirSync(join(c, "images/postgres/.stage"), { recursive: true });
    writeFileSync(join(c, "images/postgres/.stage/junk"), "x");
    expect(await tags(c)).toEqual(committed);

    appendFileSync(join(c, "images/postgres/docker-entrypoint.sh"), "# an edit\n");
    const entry = await tags(c);
    expect(changed(base, entry)).toEqual(["postgres"]);
    expect(entry.postgres.startsWith(committed.postgres.replace(/[0-9a-f]{12}$/, ""))).toBe(true);

    const lib = join(c, "images/lib/file-env.sh");
    writeFileSync(lib, readFileSync(lib, "utf8").replace("set only one", "set just one")); // the same size
    expect(changed(entry, await tags(c))).toEqual(FILE_ENV_USERS.filter((n) => n !== "postgres").concat("postgres").sort());

    // The executable bit is an input (COPY keeps it).
    const before = await tags(c);
    chmodSync(join(c, "images/redis/docker-entrypoint.sh"), 0o644);
    expect(changed(before, await tags(c))).toEqual(["redis"]);
  });

  it("--check fails on a stale images/versions.json, naming the command that writes it", async () => {
    const c = clone("a");
    appendFileSync(join(c, "images/nginx/nginx.conf"), "# an edit\n");
    const r = await runCommand("bash", ["scripts/images/image-tags.sh", "--check"], { cwd: c, env: { PATH: "/usr/bin:/bin" } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("images/versions.json is stale");
    expect(r.stderr).toContain("bash scripts/images/image-tags.sh --write");
    const w = await runCommand("bash", ["scripts/images/image-tags.sh", "--write"], { cwd: c, env: { PATH: "/usr/bin:/bin" } });
    expect(w.status, w.stderr).toBe(0);
    expect(changed(committed, JSON.parse(readFileSync(join(c, "images/versions.json"), "utf8")))).toEqual(["nginx"]);
  });
});

describe("two clones on one engine (scripts/images/build-images.sh)", () => {
  let fakes: string;
  beforeEach(() => {
    fakes = join(dir, "fakes");
    mkdirSync(fakes, { recursive: true });
    // The engine: a tag's ai-trading.hash label kept in a file per tag; each build logged.
    const labels = join(dir, "labels");
    mkdirSync(labels);
    writeFileSync(
      join(fakes, "docker"),
      `#!/bin/bash
labels=${JSON.stringify(labels)}
case "$1" in
  info|network) exit 0 ;;
  build)
    hash=$(printf '%s\\n' "$@" | sed -n 's/^ai-trading.hash=//p'); prev=""
    for a in "$@"; do [ "$prev" = -t ] && echo "$hash" > "$labels/$(echo "$a" | tr '/:' '__')"; prev=$a; done
    echo "build $*" >> ${JSON.stringify(join(dir, "builds"))} ;;
  tag) cp "$labels/$(echo "$2" | tr '/:' '__')" "$labels/$(echo "$3" | tr '/:' '__')" ;;
  image)
    ref="\${@: -1}"
    case "$*" in
      *ai-trading.hash*) cat "$labels/$(echo "$ref" | tr '/:' '__')" 2>/dev/null || exit 1 ;;
      *Size*) echo 1000 ;;
      *Id*) echo sha256:base ;;
    esac ;;
esac
`,
    );
    chmodSync(join(fakes, "docker"), 0o755);
    writeFileSync(join(fakes, "dockerd"), "#!/bin/bash\nexit 1\n");
    chmodSync(join(fakes, "dockerd"), 0o755);
  });
  const build = async (c: string) => {
    const r = await runCommand("bash", ["scripts/images/build-images.sh", "postgres"], {
      cwd: c,
      timeoutMs: 120_000,
      env: { HOME: dir, PATH: `${fakes}:/usr/bin:/bin`, TRADING_CACHE_DIR: join(dir, "cache") },
    });
    expect(r.status, r.stderr).toBe(0);
    const builds = existsSync(join(dir, "builds")) ? readFileSync(join(dir, "builds"), "utf8").trim().split("\n") : [];
    rmSync(join(dir, "builds"), { force: true });
    return { err: r.stderr, builds, tag: (JSON.parse(readFileSync(join(c, "images/versions.json"), "utf8")) as Record<string, string>).postgres };
  };

  it("equal inputs share one image (the second build is skipped); an edited entrypoint builds under a tag of its own", async () => {
    const a = clone("a");
    const b = clone("b");
    const first = await build(a);
    expect(first.tag).toBe(committed.postgres);
    expect(first.builds).toHaveLength(1);
    expect(first.builds[0]).toContain(`-t ${LOCAL_REPOSITORY}/postgres:${committed.postgres} `);

    const same = await build(b);
    expect(same.tag).toBe(first.tag);
    expect(same.builds).toEqual([]);
    expect(same.err).toContain(`${LOCAL_REPOSITORY}/postgres:${first.tag} up to date`);

    appendFileSync(join(b, "images/postgres/docker-entrypoint.sh"), "# the other clone's edit\n");
    const other = await build(b);
    expect(other.tag).not.toBe(first.tag);
    expect(other.builds).toHaveLength(1);
    expect(other.builds[0]).toContain(`-t ${LOCAL_REPOSITORY}/postgres:${other.tag} `);
    // Each clone's build log is its own (one file for both, before: each build truncated the other's).
    const logOf = (err: string) => /\(log: ([^()]+build-postgres-[0-9a-f]{12}\.log)\)/.exec(err)?.[1];
    expect(logOf(first.err)).toBeDefined();
    expect(logOf(other.err)).toBeDefined();
    expect(logOf(other.err)).not.toBe(logOf(first.err));
    // The first clone's image is still there under its tag, and still current for it.
    expect((await build(a)).builds).toEqual([]);
    // Both clones recorded for the prune of superseded tags (scripts/lib/local-images.sh), which keeps what either names.
    const records = readdirSync(join(dir, "cache/images/clones")).map((f) => readFileSync(join(dir, "cache/images/clones", f), "utf8").trim());
    expect(records.sort()).toEqual([a, b].sort());
  });
});
