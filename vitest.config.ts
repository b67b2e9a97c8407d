import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The chaos harness's own process-level runs are `npm run test:chaos` until they are
    // reliable on a loaded 2-core machine (see issue 6); its checks' unit tests stay here.
    exclude: process.env.BATON_CHAOS_TESTS === "1" ? [] : ["test/chaos/harness-*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    env: { BATON_LOG_LEVEL: process.env.BATON_LOG_LEVEL ?? "silent" },
    // Process-level tests start real workers; two at a time fits two cores.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
