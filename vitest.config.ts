import { configDefaults, defineConfig } from "vitest/config";
import { WeaviateLastSequencer } from "./tests/harness/sequencer";
import { PATIENCE_MS } from "./tests/helpers/patience";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    // The real-deploy suites have their own commands (scripts/e2e.sh, vitest.e2e.config.ts;
    // scripts/e2e-k8s.sh, vitest.e2e-k8s.config.ts: the local Kubernetes cluster).
    exclude: [...configDefaults.exclude, "tests/e2e/**", "tests/e2e-k8s/**"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    // expect.poll without a timeout of its own: vitest's default is 1 s, a first heartbeat's round
    // trip on a loaded machine (tests/helpers/patience.ts).
    expect: { poll: { timeout: PATIENCE_MS } },
    // Real servers (tests/harness): shared Postgres/Kafka/ClickHouse started once for the run.
    globalSetup: ["tests/harness/global-setup.ts"],
    // A MaxListenersExceededWarning fails the file it happened in (tests/harness/listener-warning-guard.ts).
    setupFiles: ["tests/harness/listener-warning-guard.ts"],
    // 2 cores: two test files at a time next to the servers.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // The files that start a Weaviate last: a cold machine builds it while the others run.
    sequence: { sequencer: WeaviateLastSequencer },
  },
});
