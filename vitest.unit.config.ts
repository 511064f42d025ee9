import { defineConfig } from "vitest/config";
import { PATIENCE_MS } from "./tests/helpers/patience";

// Engine-free suites only (program under mocks, pure functions, policies): no real servers.
export default defineConfig({
  test: {
    include: ["tests/unit/**/*.test.ts", "tests/policies/**/*.test.ts"],
    pool: "forks",
    // A MaxListenersExceededWarning fails the file it happened in (tests/harness/listener-warning-guard.ts).
    setupFiles: ["tests/harness/listener-warning-guard.ts"],
    testTimeout: 60_000,
    expect: { poll: { timeout: PATIENCE_MS } }, // as vitest.config.ts
  },
});
