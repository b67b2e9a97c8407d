import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    env: { BATON_LOG_LEVEL: process.env.BATON_LOG_LEVEL ?? "silent" },
    // Process-level tests start real workers; two at a time fits two cores.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
