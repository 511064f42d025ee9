/**
 * tests/harness/listener-warning-guard.ts, the setup file of vitest.config.ts, vitest.unit.config.ts
 * and tests/policies/vitest.config.ts: a MaxListenersExceededWarning (an AbortSignal's or an
 * EventEmitter's) fails the test file it happened in, naming the line that added the listener; a
 * signal shared on purpose (setMaxListeners) and other warnings do not; one a service process of the file
 * prints on its stderr, watched by the starters (tests/harness/child-warnings.ts, session 57), fails it
 * too, naming the service. Run as vitest runs it: a vitest child on
 * the fixtures in tests/unit/fixtures/listener-warnings, each file in a worker of its own.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import vitestConfig from "../../vitest.config";
import unitConfig from "../../vitest.unit.config";
import policiesConfig from "../policies/vitest.config";
import { run } from "../harness/run";

const ROOT = join(__dirname, "..", "..");
const GUARD = "tests/harness/listener-warning-guard.ts";
const FIXTURES = "tests/unit/fixtures/listener-warnings";

interface JsonReport {
  testResults: Array<{ name: string; status: string; message: string; assertionResults: Array<{ status: string }> }>;
}

describe("the listener-warning guard", () => {
  const dir = mkdtempSync(join(tmpdir(), "listener-guard-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is a setup file of the suites' configurations", () => {
    for (const config of [vitestConfig, unitConfig, policiesConfig]) expect(config.test?.setupFiles).toContain(GUARD);
  });

  it("fails a file that passes 10 listeners on one signal or emitter, naming where; a signal shared on purpose and other warnings pass", async () => {
    // A configuration of its own: the fixtures are not *.test.ts, and no global setup (servers) is needed.
    const config = join(dir, "vitest.fixtures.config.mjs");
    writeFileSync(
      config,
      `export default { test: { root: ${JSON.stringify(ROOT)}, include: [${JSON.stringify(`${FIXTURES}/*.fixture.ts`)}], ` +
        `setupFiles: [${JSON.stringify(GUARD)}], pool: "forks", testTimeout: 60000, hookTimeout: 60000 } };\n`,
    );
    const out = join(dir, "report.json");
    const r = await run("npx", ["--no-install", "vitest", "run", "-c", config, "--reporter=json", `--outputFile=${out}`], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: "" },
      timeoutMs: 240_000,
    });
    expect(r.status, r.stderr.slice(-2000)).toBe(1);
    const report = JSON.parse(readFileSync(out, "utf8")) as JsonReport;
    const byFile = Object.fromEntries(report.testResults.map((t) => [t.name.slice(t.name.lastIndexOf("/") + 1), t]));
    expect(Object.keys(byFile).sort()).toEqual(["child.fixture.ts", "emitter.fixture.ts", "leaky.fixture.ts", "shared-on-purpose.fixture.ts"]);

    // The tests themselves passed: the file fails at its end, for the warning.
    for (const t of Object.values(byFile)) expect(t.assertionResults.map((a) => a.status)).toEqual(["passed"]);
    expect(byFile["shared-on-purpose.fixture.ts"].status).toBe("passed");
    for (const [file, line] of [["leaky.fixture.ts", 7], ["emitter.fixture.ts", 8]] as const) {
      expect(byFile[file].status, file).toBe("failed");
      expect(byFile[file].message).toContain("1 MaxListenersExceededWarning(s) while this file ran");
      expect(byFile[file].message).toContain(`${file}:${line}:`);
    }
    expect(byFile["leaky.fixture.ts"].message).toContain("11 abort listeners added to [AbortSignal]");
    expect(byFile["emitter.fixture.ts"].message).toContain("11 error listeners added to [EventEmitter]");
    // A service process's warning: the file fails naming the service and Node's text.
    expect(byFile["child.fixture.ts"].status).toBe("failed");
    expect(byFile["child.fixture.ts"].message).toContain("1 MaxListenersExceededWarning(s) printed by service processes this file started");
    expect(byFile["child.fixture.ts"].message).toMatch(/fixture-service \(pid \d+\): MaxListenersExceededWarning: Possible EventTarget memory leak detected\. 11 abort listeners added to \[AbortSignal\]/);
  });
});
