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
  /** Runs the function with `docker` answered by a script that records its arguments. */
  const run = (withDocker: boolean) => {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "fake-docker-"));
    const calls = path.join(bin, "calls");
    if (withDocker) fs.writeFileSync(path.join(bin, "docker"), `#!/bin/sh\nprintf '%s\\n' "$@" >> ${calls}\necho "Deleted: sha256:abc"\necho "Total reclaimed space: 1.2GB"\n`, { mode: 0o755 });
    const r = spawnSync("/bin/bash", ["-c", `source ${path.join(ROOT, "scripts/lib/local-images.sh")} && prune_superseded_images`], {
      // Without Docker: the empty directory alone (the machine's own docker must not run here).
      encoding: "utf8", env: { PATH: withDocker ? `${bin}:/usr/bin:/bin` : bin, HOME: os.homedir() },
    });
    const args = fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").trim().split("\n") : [];
    fs.rmSync(bin, { recursive: true, force: true });
    return { status: r.status, stderr: r.stderr, args };
  };

  it("removes only untagged images with this repo's label, older than an hour, and says how much", () => {
    const r = run(true);
    expect(r.status).toBe(0);
    // Not `--all` (tagged images stay), always the label (another project's images stay), always the hour (a running build's stay).
    expect(r.args).toEqual(["image", "prune", "--force", "--filter", "label=ai-trading.image", "--filter", "until=1h"]);
    expect(r.stderr).toContain("[images] superseded local builds removed: 1.2GB");
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
