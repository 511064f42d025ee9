/**
 * Keeps docs/architecture.md true where a test can: the paths it names exist, and the boundaries
 * it states hold in the source (issue 9's "done when", each as an assertion): provider packages
 * only in components/runtime/, no runtime `instanceof`, no literal catalog service name outside
 * catalog/, catalog/ self-contained, no service source file over 300 lines, no `as unknown as` in
 * services/src, policies on the public `@pulumi/policy` API only, the image switch only in the image
 * manifest, the ClickHouse 18.16 binding path isolated, datastore clients through the kit's typed
 * decorators.
 */
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { catalog } from "../../catalog";

const root = path.join(__dirname, "..", "..");

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.name === "node_modules") continue;
    if (entry.isDirectory()) out.push(...sourceFiles(rel));
    else if (entry.name.endsWith(".ts")) out.push(rel);
  }
  return out;
}

const read = (rel: string) => fs.readFileSync(path.join(root, rel), "utf8");
/** Import specifiers of a TypeScript file (import ... from "x", export ... from "x", import("x"), require("x")). */
function importsOf(text: string): string[] {
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*|^import\s+)["']([^"']+)["']/gm)].map((m) => m[1]);
}

const program = ["index.ts", ...sourceFiles("components"), ...sourceFiles("stacks")];

const outsideCatalog = [...program, ...sourceFiles("policies")];

describe("docs/architecture.md", () => {
  const doc = read("docs/architecture.md");

  it("names only paths that exist", () => {
    const paths = [...doc.matchAll(/`([A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.<>-]*)+|[A-Za-z0-9_-]+\.(?:ts|yaml|md))`/g)]
      .map((m) => m[1])
      .filter((p) => !p.includes("<"));
    expect(paths.length).toBeGreaterThan(20);
    const bare = new Set(["index.ts", "secrets.ts", "storage.ts", "pod.ts", "workloads.ts", "scheduling.ts", "availability.ts", "network-policy.ts", "ingress.ts"]);
    const missing = paths.filter((p) => {
      if (fs.existsSync(path.join(root, p))) return false;
      // file names listed inside components/runtime/kubernetes/, and `kubernetes/secrets.ts` style
      const inK8s = path.join(root, "components/runtime", p);
      return !(fs.existsSync(inK8s) || (bare.has(p) && fs.existsSync(path.join(root, "components/runtime/kubernetes", p))));
    });
    expect(missing).toEqual([]);
  });
});

describe("boundaries", () => {
  it("no component outside components/runtime/ imports a provider package", () => {
    const offenders = program
      .filter((f) => !f.startsWith(path.join("components", "runtime")))
      .filter((f) => importsOf(read(f)).some((i) => i === "@pulumi/docker" || i === "@pulumi/kubernetes"));
    expect(offenders).toEqual([]);
  });

  it("nothing tests a runtime's class", () => {
    const offenders = outsideCatalog.filter((f) => /instanceof\s+(DockerRuntime|KubernetesRuntime)\b/.test(read(f)));
    expect(offenders).toEqual([]);
  });

  it("no literal catalog service name outside catalog/ (components, stacks, the program, policies)", () => {
    const names = catalog.map((s) => s.name);
    const offenders = outsideCatalog.flatMap((f) => {
      const text = read(f);
      return names.filter((n) => new RegExp(`["'\`]${n}["'\`]`).test(text)).map((n) => `${f}: ${n}`);
    });
    expect(offenders).toEqual([]);
  });

  it("catalog/ imports nothing outside itself and no npm package", () => {
    const imports = sourceFiles("catalog").flatMap((f) => importsOf(read(f)).map((i) => `${f}: ${i}`));
    expect(imports.filter((i) => !/: \.\/[a-z-]+$/.test(i))).toEqual([]);
  });

  it("the services see the catalog through one re-export", () => {
    expect(importsOf(read("services/src/catalog.ts")).every((i) => i.startsWith("../../catalog/"))).toBe(true);
  });
});

describe("services", () => {
  const services = sourceFiles(path.join("services", "src"));

  it("no service source file over 300 lines", () => {
    const long = services.map((f) => [f, read(f).split("\n").length] as const).filter(([, n]) => n > 300);
    expect(long.map(([f, n]) => `${f}: ${n} lines`)).toEqual([]);
  });

  it("no `as unknown as` cast in services/src", () => {
    expect(services.filter((f) => /\bas\s+unknown\s+as\b/.test(read(f)))).toEqual([]);
  });

  it("each service folder holds routes apart from its wiring (index.ts registers, routes.ts or a layer file answers HTTP)", () => {
    const folders = fs.readdirSync(path.join(root, "services", "src", "services"));
    const oneFile = folders.filter((d) => fs.readdirSync(path.join(root, "services", "src", "services", d)).filter((f) => f.endsWith(".ts")).length < 2);
    expect(oneFile).toEqual([]);
  });

  it("datastore clients come from the kit's typed decorators (app.pg, app.redis, ...), not the registry's accessors", () => {
    const accessor = /\bdatastores\.(postgres|dragonfly|clickhouse|kafka|redpanda|arangodb|weaviate)\b/;
    const offenders = services
      .filter((f) => !f.startsWith(path.join("services", "src", "kit")))
      .filter((f) => read(f).split("\n").some((line) => !/^\s*(\*|\/\/)/.test(line) && accessor.test(line)));
    expect(offenders).toEqual([]);
  });

  it("one definition of a transient datastore error (kit/transient-errors.ts): no other file lists outage codes or driver messages", () => {
    const outageWords = /ECONNREFUSED|timeout exceeded when trying to connect|KafkaJSConnectionError|TRANSIENT_SQLSTATE/;
    expect(services.filter((f) => outageWords.test(read(f)))).toEqual([path.join("services", "src", "kit", "transient-errors.ts")]);
  });

  it("the ClickHouse 18.16 binding path is imported by the kit's ClickHouse client alone", () => {
    const importers = services.filter((f) => importsOf(read(f)).some((i) => /legacy-binding$/.test(i)));
    expect(importers).toEqual([path.join("services", "src", "kit", "clickhouse", "client.ts")]);
  });
});

describe("policies and images", () => {
  it("policies/ imports only the public @pulumi/policy API (no deep imports of its internals)", () => {
    const deep = sourceFiles("policies").flatMap((f) => importsOf(read(f)).filter((i) => i.startsWith("@pulumi/policy/")).map((i) => `${f}: ${i}`));
    expect(deep).toEqual([]);
    expect(sourceFiles("policies").filter((f) => /__getSpecialProxyTarget|unknownCheckingProxy/.test(read(f)))).toEqual([]);
  });

  it("the local/upstream image switch lives in the image manifest (stacks/images.ts), not in components", () => {
    const offenders = program
      .filter((f) => f.startsWith("components") && !f.startsWith(path.join("components", "runtime")))
      .filter((f) => /\bimageSource\b|["']upstream["']|["']local["']/.test(read(f)));
    expect(offenders).toEqual([]);
  });
});
