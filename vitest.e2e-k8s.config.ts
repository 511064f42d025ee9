import { defineConfig } from "vitest/config";

// The local-Kubernetes suite (scripts/e2e-k8s.sh, `npm run e2e:k8s`): one file, in order, against
// the cluster of scripts/cluster/. Not part of `npm test` / .ci/run (the cold cluster build alone
// takes over an hour on 2 cores).
export default defineConfig({
  test: {
    include: ["tests/e2e-k8s/**/*.e2e.test.ts"],
    pool: "forks",
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 30 * 60_000,
    hookTimeout: 60 * 60_000,
  },
});
