/**
 * The GitHub workflows (.github/workflows) pass actionlint, built from the Go module proxy by
 * scripts/tools/build-actionlint.sh (cached under ${TRADING_CACHE_DIR:-~/.cache/ai-trading}, niced),
 * and do what the README says: PR previews of dev and prod with the policy pack and a PR comment
 * (pulumi/actions), a scheduled drift check, the test suite.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { run, type RunResult } from "../harness/run";

const root = join(__dirname, "..", "..");
const dir = join(root, ".github", "workflows");
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
const workflow = (f: string) => parse(readFileSync(join(dir, f), "utf8"));
type Step = { uses?: string; with?: Record<string, unknown>; run?: string };
const steps = (f: string): Step[] => Object.values(workflow(f).jobs as Record<string, { steps: Step[] }>).flatMap((j) => j.steps);

/** Exit code of build-actionlint.sh without a Go toolchain. */
const NO_GO = 2;

describe("GitHub workflows", () => {
  // Built in a hook, not at import: a cold build takes minutes, and a worker blocked that long
  // loses vitest's answers (tests/harness/run.ts).
  let build: RunResult;
  beforeAll(async () => {
    build = await run("bash", [join(root, "scripts/tools/build-actionlint.sh")], { timeoutMs: 20 * 60_000 });
  }, 21 * 60_000);

  it("has the preview, drift and test workflows", () => {
    expect(files.sort()).toEqual(["drift.yml", "preview.yml", "test.yml"]);
  });

  it("pass actionlint (built from the Go module proxy; skipped, saying so, without Go)", async (ctx) => {
    if (build.status === NO_GO) {
      expect(build.stderr).toMatch(/no Go toolchain/);
      ctx.skip("actionlint needs Go to build (install Go, or see scripts/tools/build-actionlint.sh)");
    }
    expect(build.status, build.stderr).toBe(0);
    const actionlint = build.stdout.trim().split("\n").at(-1)!;
    const r = await run(actionlint, ["-no-color", ...files.map((f) => join(dir, f))], { cwd: root });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("previews dev and prod on pull requests with pulumi/actions, the policy pack and a PR comment", () => {
    const w = workflow("preview.yml");
    expect(Object.keys(w.on)).toContain("pull_request");
    expect(w.jobs.preview.strategy.matrix.stack).toEqual(["dev", "prod"]);
    const preview = steps("preview.yml").find((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command === "preview")!;
    expect(preview.with).toMatchObject({ "comment-on-pr": true, policyPacks: "policies", policyPackConfigs: "policies/config/${{ matrix.stack }}.json" });
  });

  it("checks drift on a schedule (refresh, expect no changes) for both stacks", () => {
    const w = workflow("drift.yml");
    expect(w.on.schedule[0].cron).toMatch(/\S+ \S+ \S+ \S+ \S+/);
    expect(w.jobs.drift.strategy.matrix.stack).toEqual(["dev", "prod"]);
    const preview = steps("drift.yml").find((s) => s.uses?.startsWith("pulumi/actions@"))!;
    expect(preview.with).toMatchObject({ command: "preview", refresh: true, "expect-no-changes": true });
  });

  it("runs the test suite the way CI does (.ci/run)", () => {
    expect(steps("test.yml").some((s) => s.run?.includes(".ci/run"))).toBe(true);
  });
});
