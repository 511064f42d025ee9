import { defineConfig } from "vitest/config";

// The real-deploy suite (scripts/e2e.sh): one file at a time, they share the Docker engine.
export default defineConfig({
  test: {
    include: ["tests/e2e/**/*.e2e.test.ts"],
    pool: "forks",
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
    testTimeout: 30 * 60_000,
    hookTimeout: 40 * 60_000,
  },
});
