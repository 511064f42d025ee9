/**
 * The local builds are never names Docker Hub answers for: a bare `ai-trading/<build>` resolves to
 * docker.io/ai-trading/<build>, so an image missing on the host would be pulled from whoever owns
 * that namespace. Every reference the programs, the build scripts and the Dockerfiles use must sit
 * under LOCAL_REPOSITORY (`localhost/...`, a registry host of this machine).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { qualifiedRepository } from "../../catalog/images";
import { containerImage, LOCAL_REPOSITORY, localStandIns, type ImageName } from "../../stacks/images";

const ROOT = path.join(__dirname, "..", "..");

/** Files that name local images: the image builds, the scripts that build, tag and import them, the programs. */
function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== "node_modules" && !e.name.startsWith(".")) walk(rel);
      } else if (/(\.sh|\.ts|\.json|Dockerfile)$/.test(e.name)) out.push(rel);
    }
  };
  for (const dir of ["components", "stacks", "scripts", "images", "services/scripts", "tools/providers/e2e", "policies/config"]) walk(dir);
  out.push("index.ts", "services/Dockerfile", "ml/Dockerfile");
  return out;
}

describe("local image names", () => {
  it("resolve to the local registry host, never to Docker Hub", () => {
    expect(qualifiedRepository(`${LOCAL_REPOSITORY}/x:1`)).toBe(`${LOCAL_REPOSITORY}/x`);
    const names = Object.keys(localStandIns) as ImageName[];
    expect(names.length).toBeGreaterThan(5);
    for (const name of names) {
      const ref = containerImage(name, "local")!.ref;
      expect(qualifiedRepository(ref), ref).toMatch(/^localhost\//);
    }
  });

  it("are spelt under LOCAL_REPOSITORY in every script, Dockerfile and program", () => {
    const builds = [...fs.readdirSync(path.join(ROOT, "images")).filter((d) => fs.existsSync(path.join(ROOT, "images", d, "Dockerfile"))), "debian", "services", "trainer"];
    // A build's name after "ai-trading/" that nothing but "localhost/" precedes: a Docker Hub name.
    const bare = new RegExp(`(?<![\\w./])ai-trading/(${builds.join("|")}|\\$|['"\`])`, "g");
    const found = sources().flatMap((file) =>
      fs.readFileSync(path.join(ROOT, file), "utf8").split("\n").flatMap((line, i) => (line.match(bare) ? [`${file}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(found).toEqual([]);
  });

  it("have one spelling in the shell scripts, scripts/lib/local-images.sh, equal to LOCAL_REPOSITORY", () => {
    const lib = fs.readFileSync(path.join(ROOT, "scripts/lib/local-images.sh"), "utf8");
    expect(/^LOCAL_REPOSITORY=(\S+)$/m.exec(lib)?.[1]).toBe(LOCAL_REPOSITORY);
    // Code lines (comments may name an image for the reader) that spell it instead of sourcing the lib.
    const spelt = sources()
      .filter((file) => file.endsWith(".sh") && file !== path.join("scripts", "lib", "local-images.sh"))
      .flatMap((file) =>
        fs.readFileSync(path.join(ROOT, file), "utf8").split("\n").flatMap((line, i) => (!/^\s*#/.test(line) && line.includes(LOCAL_REPOSITORY) ? [`${file}:${i + 1}: ${line.trim()}`] : [])),
      );
    expect(spelt).toEqual([]);
  });
});

describe("superseded local builds (scripts/lib/local-images.sh prune_superseded_images)", () => {
  /** Runs the function with `docker` answered by a script that records its arguments (and runs BODY). */
  const run = (withDocker: boolean, body = `echo "Deleted: sha256:abc"\necho "Total reclaimed space: 1.2GB"`, root = ROOT) => {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "fake-docker-"));
    const calls = path.join(bin, "calls");
    if (withDocker) fs.writeFileSync(path.join(bin, "docker"), `#!/bin/bash\necho "$*" >> ${calls}\n${body}\n`, { mode: 0o755 });
    const r = spawnSync("/bin/bash", ["-c", `source ${path.join(root, "scripts/lib/local-images.sh")} && prune_superseded_images`], {
      // Without Docker: the empty directory alone (the machine's own docker must not run here).
      // The clone records of an empty cache folder, never this machine's.
      encoding: "utf8", env: { PATH: withDocker ? `${bin}:/usr/bin:/bin` : bin, HOME: os.homedir(), TRADING_CACHE_DIR: path.join(bin, "cache") },
    });
    const args = fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trim().split("\n") : [];
    fs.rmSync(bin, { recursive: true, force: true });
    return { status: r.status, stderr: r.stderr, args };
  };

  it("removes only untagged images with this repo's label, older than an hour, and says how much", () => {
    const r = run(true);
    expect(r.status).toBe(0);
    // Not `--all` (tagged images stay), always the label (another project's images stay), always the hour (a running build's stay).
    expect(r.args[0]).toBe("image prune --force --filter label=ai-trading.image --filter until=1h");
    expect(r.stderr).toContain("[images] superseded local builds removed: 1.2GB");
  });

  it("removes the tags of the datastore builds that no clone here names, older than an hour, never with force", () => {
    // A clone (its versions.json and three builds), another clone registered by its build, one registered and gone.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prune-tags-"));
    const clone = (name: string, tags: Record<string, string>) => {
      const c = path.join(dir, name);
      for (const n of ["postgres", "redis", "node", "kafka"]) {
        fs.mkdirSync(path.join(c, "images", n), { recursive: true });
        fs.writeFileSync(path.join(c, "images", n, "Dockerfile"), "FROM x\n");
      }
      fs.writeFileSync(path.join(c, "images/versions.json"), JSON.stringify(tags, null, 2) + "\n");
      return c;
    };
    const a = clone("a", { kafka: "3.9.1-local-111111111111", node: "20.20.2-local-cccccccccccc", postgres: "15.20-local-aaaaaaaaaaaa", redis: "7.0.15-local-bbbbbbbbbbbb" });
    fs.mkdirSync(path.join(a, "scripts/lib"), { recursive: true });
    fs.copyFileSync(path.join(ROOT, "scripts/lib/local-images.sh"), path.join(a, "scripts/lib/local-images.sh"));
    const b = clone("b", { postgres: "15.20-local-dddddddddddd" });
    const cache = path.join(dir, "cache");
    fs.mkdirSync(path.join(cache, "images/clones"), { recursive: true });
    fs.writeFileSync(path.join(cache, "images/clones/b"), `${b}\n`);
    fs.writeFileSync(path.join(cache, "images/clones/gone"), `${path.join(dir, "gone")}\n`);
    const L = LOCAL_REPOSITORY;
    const listed = [
      `${L}/postgres:15.20-local-aaaaaaaaaaaa`, // this clone's
      `${L}/postgres:15.20-local-dddddddddddd`, // the other clone's
      `${L}/postgres:15.20-local-eeeeeeeeeeee`, // superseded
      `${L}/postgres:15.20-local`, // the unkeyed tag of before
      `${L}/redis:7.0.15-local-ffffffffffff`, // built a minute ago (a build running now)
      `${L}/kafka:3.9.1-local`, // a stopped container uses it
      `${L}/node:20`, `${L}/services:0.1.0`, `${L}/trainer:0.1.0-local-k8s`, "<none>:<none>", "other/postgres:15.20-local",
    ];
    const now = new Date().toISOString();
    const body = `case "$1 $2" in
  "image ls") printf '%s\\n' ${listed.map((l) => `'${l}'`).join(" ")} ;;
  "image inspect") case "\${@: -1}" in *ffffffffffff) echo ${now} ;; *) echo 2026-01-01T00:00:00.123456789Z ;; esac ;;
  "image rm") case "$3" in *kafka*) echo "Error response from daemon: conflict: unable to remove repository reference (must force)" >&2; exit 1 ;; esac; echo "Untagged: $3" ;;
esac`;
    fs.mkdirSync(path.join(dir, "bin"));
    fs.writeFileSync(path.join(dir, "bin/docker"), `#!/bin/bash\necho "$*" >> ${path.join(dir, "calls")}\n${body}\n`, { mode: 0o755 });
    const out = spawnSync("/bin/bash", ["-c", `source ${path.join(a, "scripts/lib/local-images.sh")} && prune_superseded_images`], {
      encoding: "utf8", env: { PATH: `${dir}/bin:/usr/bin:/bin`, HOME: dir, TRADING_CACHE_DIR: cache },
    });
    const calls = fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n");
    const gone = fs.existsSync(path.join(cache, "images/clones/gone"));
    const kept = fs.existsSync(path.join(cache, "images/clones/b"));
    fs.rmSync(dir, { recursive: true, force: true });
    expect(out.status, out.stderr).toBe(0);
    expect(calls.filter((c) => c.startsWith("image rm"))).toEqual([
      `image rm ${L}/postgres:15.20-local-eeeeeeeeeeee`,
      `image rm ${L}/postgres:15.20-local`,
      `image rm ${L}/kafka:3.9.1-local`,
    ]);
    expect(out.stderr).toContain("[images] superseded local image tags removed (no clone here names them; no container uses them): postgres:15.20-local-eeeeeeeeeeee postgres:15.20-local\n");
    expect(gone).toBe(false); // the record of a clone that is gone
    expect(kept).toBe(true);
  });

  it("removes no tag where this clone has no images/versions.json", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prune-tags-"));
    fs.mkdirSync(path.join(dir, "scripts/lib"), { recursive: true });
    fs.copyFileSync(path.join(ROOT, "scripts/lib/local-images.sh"), path.join(dir, "scripts/lib/local-images.sh"));
    const r = run(true, `[ "$2" = ls ] && echo ${LOCAL_REPOSITORY}/postgres:15.20-local; [ "$2" = inspect ] && echo 2026-01-01T00:00:00Z; true`, dir);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(0);
    expect(r.args.filter((c) => c.startsWith("image rm"))).toEqual([]);
  });

  it("does nothing where Docker is not installed", () => {
    expect(run(false)).toMatchObject({ status: 0, args: [] });
  });

  it("runs after every `npm run up` and `npm run down`", () => {
    for (const script of ["scripts/up.sh", "scripts/down.sh"]) {
      expect(fs.readFileSync(path.join(ROOT, script), "utf8"), script).toMatch(/source scripts\/lib\/local-images\.sh\nprune_superseded_images\n/);
    }
  });
});
