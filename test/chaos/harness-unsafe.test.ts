/**
 * The harness must be able to fail. With a safety mechanism switched off in the workers
 * (the internal switches of src/internal/unsafe-switches.ts), a short game day aimed at
 * what that mechanism prevents must end with violations of the matching check.
 */
import { describe, expect, it } from "vitest";
import type { ChaosOptions } from "../../src/chaos/chaos-options.js";
import type { ChaosReport } from "../../src/chaos/report.js";
import { runChaos } from "../../src/chaos/run-chaos.js";

const base: ChaosOptions = {
  runs: 150,
  workers: 3,
  durationMs: 8_000,
  rollingRestarts: 0,
  killIntervalMs: 1_000,
  nodeArgs: ["--import", "tsx"],
  workload: { modelMs: [30, 90], sleepMs: [100, 300], ledgerMs: [50, 150] },
};

const violationsOf = (report: ChaosReport, id: string) =>
  report.checks.find((c) => c.id === id)?.count ?? 0;

describe("the harness catches a broken build", () => {
  it("fencing off (BATON_UNSAFE_DISABLE_FENCING=1), workers frozen past their lease: stale writes accepted are caught", async () => {
    const report = await runChaos({
      ...base,
      seed: 5,
      kill: { k8s: 0, sigkill: 0, stop: 1 },
      // Every freeze a split brain (never a worker frozen inside a SQLite commit, which
      // would stall the store instead), and steps long enough that the new owner is still
      // inside the step the frozen worker wakes up in.
      stopOutsideCommits: true,
      workload: { ...base.workload, modelMs: [50, 150] },
      env: { BATON_UNSAFE_DISABLE_FENCING: "1" },
    });
    expect(report.terminations.stop).toBeGreaterThanOrEqual(2);
    expect(violationsOf(report, "one-owner")).toBeGreaterThan(0);
    expect(report.checks.find((c) => c.id === "one-owner")!.violations[0]).toMatch(
      /written with fence \d+ .* \(a stale write accepted\)|a stale transition accepted/,
    );
    expect(report.ok).toBe(false);
  });

  it("outbox off (BATON_UNSAFE_DISABLE_OUTBOX=1), workers SIGKILLed: effects applied twice are caught", async () => {
    const report = await runChaos({
      ...base,
      seed: 6,
      kill: { k8s: 0, sigkill: 1, stop: 0 },
      killIntervalMs: 800,
      // Long ledger answers: most SIGKILLs land while some call is on its way.
      workload: { ...base.workload, ledgerMs: [100, 250] },
      env: { BATON_UNSAFE_DISABLE_OUTBOX: "1" },
    });
    expect(report.terminations.sigkill).toBeGreaterThanOrEqual(2);
    expect(violationsOf(report, "effects-once")).toBeGreaterThan(0);
    expect(report.duplicates.effectsAskedAgain).toBeGreaterThan(0);
    expect(report.ok).toBe(false);
  });
});
