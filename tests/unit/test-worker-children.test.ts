/**
 * A test worker never waits on a long child process synchronously. Blocked a minute (a cold build,
 * a venv install, initdb on a loaded machine), it cannot take vitest's answers to its progress
 * reports: the run ends "[vitest-worker]: Timeout calling onTaskUpdate", exit 1, with every test
 * passed (session 34's cold `npm test`: the actionlint build in a worker). Long commands go through
 * tests/harness/run.ts; the synchronous calls left are listed here with why each takes seconds, so
 * a new one is a decision, not an accident.
 */
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";

const root = path.join(__dirname, "..", "..");

/** Files allowed synchronous children, and why each is quick. */
const QUICK: Record<string, string> = {
  "tests/unit/config-tools.test.ts": "promtool checks and nginx -t: seconds",
  "tests/unit/dashboards.test.ts": "promtool --version and one rules check",
  "tests/unit/local-image-names.test.ts": "a shell function of scripts/lib against a fake docker",
  "tests/unit/setup-scripts.test.ts": "build-pulumi-tools.sh --plan prints the plan, builds nothing",
  "tests/unit/newcomer-scripts.test.ts": "`command -v`, chmod and find on a small copied tree; the scripts under test run through tests/harness/run.ts",
  "tests/policies/edge-exposure.test.ts": "`openssl req` makes a few small CSRs (an EC or RSA 2048 key each)",
  "tests/services/kit.test.ts": "main.ts refusing a bad configuration, before it connects anywhere",
  "tests/harness/postgres.ts": "`id -u`/`id -g` of the postgres user",
  "tests/harness/run.ts": "names them in its comment",
  "tests/unit/test-worker-children.test.ts": "names them",
  "tests/e2e/cli.ts": "`docker` inspections (the deploys themselves are spawned)",
  "tests/e2e-k8s/kube.ts": "reads variables of scripts/cluster/lib.sh and runs kubeconfig.sh",
  "tests/unit/service-env-refusals.test.ts": "the cron entry point refusing a LOG_LEVEL, before it runs anything",
  "tests/helpers/edge-nginx.ts": "one `openssl req` for a throwaway EC certificate (config-tools' too)",
  "tests/unit/arangodb-start.test.ts": "the ArangoDB start script run by /bin/sh against stand-in commands: milliseconds",
  "tests/unit/script-paths.test.ts": "cluster/build.sh's addon_key over two small patch files, locks.sh's holder lookup (one find over /proc) and cluster/lib.sh's mounts_under over a small file, by bash: milliseconds",
};

function files(dir: string): string[] {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    return e.isDirectory() ? files(rel) : e.name.endsWith(".ts") ? [rel] : [];
  });
}

describe("test workers and child processes", () => {
  it("only the listed files call spawnSync, execFileSync or execSync", () => {
    const sync = files("tests").filter((f) => /\b(spawnSync|execFileSync|execSync)\b/.test(fs.readFileSync(path.join(root, f), "utf8")));
    expect(sync.filter((f) => !(f in QUICK)), "a long command goes through tests/harness/run.ts").toEqual([]);
    // The list stays exact: a file that no longer needs it leaves it.
    expect(Object.keys(QUICK).filter((f) => !sync.includes(f))).toEqual([]);
  });
});
