import * as path from "path";
import { defineConfig } from "vitest/config";

// The policy suites alone: pure policy tests and the program under mocks, no real servers
// (the root config's globalSetup starts databases). `npx vitest run --config tests/policies/vitest.config.ts`
export default defineConfig({
  root: path.join(__dirname, "..", ".."),
  test: {
    include: ["tests/policies/**/*.test.ts"],
    pool: "forks",
    // A MaxListenersExceededWarning fails the file it happened in (tests/harness/listener-warning-guard.ts).
    setupFiles: ["tests/harness/listener-warning-guard.ts"],
    testTimeout: 60_000,
  },
});
