/**
 * The suite's order (tests/harness/sequencer.ts): the files that start a Weaviate run last, so that
 * on a cold machine the other suites run while scripts/test.sh builds it in the background.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startsWeaviate } from "../harness/sequencer";

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith(".test.ts") ? [join(dir, e.name)] : [],
  );
}

describe("the files that start a Weaviate", () => {
  it("are told by their harness call, whichever form it takes", () => {
    expect(startsWeaviate(`const srv = useServers("postgres", "weaviate");`)).toBe(true);
    expect(startsWeaviate(`useServersWith({ privateKafka: true }, "postgres", 'weaviate')`)).toBe(true);
    expect(startsWeaviate(`const s = await startWeaviate();`)).toBe(true);
    expect(startsWeaviate(`const srv = useServers("postgres", "clickhouse"); // no weaviate here`)).toBe(false);
    expect(startsWeaviate(`import { weaviateAvailability } from "../harness/weaviate";`)).toBe(false);
  });

  it("are exactly the suites that ask for one (tests/)", () => {
    const root = join(__dirname, "..");
    const found = testFiles(root)
      .filter((f) => !f.includes(`${join("tests", "e2e")}`) && f !== __filename) // this file quotes the calls
      .filter((f) => startsWeaviate(readFileSync(f, "utf8")))
      .map((f) => f.slice(root.length + 1))
      .sort();
    expect(found).toEqual(["ai/e2e.test.ts", "services/ml-predictor.test.ts", "services/weaviate.test.ts"]);
  });
});
