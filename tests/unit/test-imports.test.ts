/**
 * Every relative import of the test tree resolves to a file. vitest loads tests untyped and a
 * file with a dangling import fails only when it runs, mid-suite (a helper moved by one branch
 * while another branch added a test importing it from the old place). The test tree is not yet
 * type-checked as a whole (tsc over tests/ reports ~50 typing gaps); this catches the breaking kind.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(__dirname, "../..");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (n === "node_modules" || n === "fixtures") return [];
    return statSync(p).isDirectory() ? files(p) : /\.(ts|mts)$/.test(n) ? [p] : [];
  });
}

const IMPORT = /(?:import|export)\s[^;]*?from\s+["'](\.{1,2}\/[^"']+)["']|import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;

function resolves(from: string, spec: string): boolean {
  const base = resolve(dirname(from), spec);
  if (existsSync(join(base, "package.json"))) return true; // a package folder (services/node_modules/...)
  return [base, `${base}.ts`, `${base}.js`, `${base}.mts`, join(base, "index.ts"), join(base, "index.js")].some((p) => existsSync(p) && statSync(p).isFile());
}

describe("test tree imports", () => {
  it("every relative import of tests/ and bench/ names an existing file", () => {
    const dangling: string[] = [];
    for (const f of [...files(join(ROOT, "tests")), ...files(join(ROOT, "bench"))]) {
      for (const m of readFileSync(f, "utf8").matchAll(IMPORT)) {
        const spec = m[1] ?? m[2];
        if (!resolves(f, spec)) dangling.push(`${f.slice(ROOT.length + 1)}: ${spec}`);
      }
    }
    expect(dangling).toEqual([]);
  });

  it("notices a dangling import", () => {
    expect(resolves(join(ROOT, "tests/services/openapi.test.ts"), "../hostile/platform")).toBe(false);
    expect(resolves(join(ROOT, "tests/services/openapi.test.ts"), "../helpers/platform")).toBe(true);
  });
});
