/**
 * The GitHub workflows (.github/workflows) pass actionlint, built from the Go module proxy by
 * scripts/tools/build-actionlint.sh (cached under ${TRADING_CACHE_DIR:-~/.cache/ai-trading}, niced),
 * and do what the README says: PR previews of dev and prod with the policy pack and a PR comment
 * (pulumi/actions), a scheduled drift check, the test suite.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const root = join(__dirname, "..", "..");
const dir = join(root, ".github", "workflows");
const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
const workflow = (f: string) => parse(readFileSync(join(dir, f), "utf8"));
type Step = { uses?: string; with?: Record<string, unknown>; run?: string };
const steps = (f: string): Step[] => Object.values(workflow(f).jobs as Record<string, { steps: Step[] }>).flatMap((j) => j.steps);

const build = spawnSync("bash", [join(root, "scripts/tools/build-actionlint.sh")], { encoding: "utf8", timeout: 20 * 60_000 });
const actionlint = build.status === 0 ? build.stdout.trim().split("\n").at(-1)! : undefined;

describe("GitHub workflows", () => {
  it("has the preview, drift and test workflows", () => {
    expect(files.sort()).toEqual(["drift.yml", "preview.yml", "test.yml"]);
  });

  it.skipIf(build.status === 2)("pass actionlint (built from the Go module proxy)", () => {
    expect(build.status, build.stderr).toBe(0);
    const r = spawnSync(actionlint!, ["-no-color", ...files.map((f) => join(dir, f))], { encoding: "utf8", cwd: root });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
  if (build.status === 2) it("actionlint needs Go to build: skipped (install Go, or see scripts/tools/build-actionlint.sh)", () => expect(build.stderr).toMatch(/no Go toolchain/));

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
