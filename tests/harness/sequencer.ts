/**
 * Vitest's order with the files that start a Weaviate last when the server is being built: on a machine that has not built the
 * server yet, `npm test` builds it in the background (scripts/test.sh), and those files wait for it
 * (weaviate.ts), so the other suites run during the build instead of after it. A file is one of
 * them when it asks the harness for "weaviate" (useServers / useServersWith) or calls startWeaviate.
 */
import { readFileSync } from "node:fs";
import { BaseSequencer, type TestSpecification } from "vitest/node";

const STARTS_WEAVIATE = /useServers(?:With)?\([^)]*["']weaviate["']|startWeaviate\(/;

export function startsWeaviate(source: string): boolean {
  return STARTS_WEAVIATE.test(source);
}

export class WeaviateLastSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    // Only while a build is pending (scripts/test.sh sets WEAVIATE_BUILD_LOG): a warm run keeps
    // vitest's own order, longest files first.
    if (!process.env.WEAVIATE_BUILD_LOG) return sorted;
    const needs = (f: TestSpecification) => {
      try {
        return startsWeaviate(readFileSync(f.moduleId, "utf8"));
      } catch {
        return false;
      }
    };
    const last = sorted.filter(needs);
    return [...sorted.filter((f) => !last.includes(f)), ...last];
  }
}
