/**
 * The local builds are never names Docker Hub answers for: a bare `ai-trading/<build>` resolves to
 * docker.io/ai-trading/<build>, so an image missing on the host would be pulled from whoever owns
 * that namespace. Every reference the programs, the build scripts and the Dockerfiles use must sit
 * under LOCAL_REPOSITORY (`localhost/...`, a registry host of this machine).
 */
import * as fs from "fs";
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
