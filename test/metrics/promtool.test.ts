import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { BatonMetrics } from "../../src/metrics/baton-metrics.js";
import {
  COMPENSATION_OUTCOMES,
  EFFECT_RESOLUTIONS,
  HANDOFF_REASONS,
  STEP_OUTCOMES,
} from "../../src/metrics/labels.js";
import type { ShutdownReport } from "../../src/lifecycle/types.js";
import { PHASES } from "../../src/lifecycle/types.js";
import type { Store } from "../../src/store/store.js";
import { emptyTally } from "../../src/worker/shutdown-report.js";

// `promtool` comes with the Debian package `prometheus` (.ci/run installs it). In CI the
// check must run: a missing promtool fails the test instead of skipping it.
// `PROMTOOL` names another binary (default: `promtool` on the PATH).
const PROMTOOL = process.env.PROMTOOL ?? "promtool";
const available = spawnSync(PROMTOOL, ["--version"], { encoding: "utf8" }).status === 0;
const inCi = process.env.CI === "true";

function populated(): BatonMetrics {
  const metrics = new BatonMetrics({
    store: {
      countRuns: () => Promise.resolve({ queued: 3, running: 2, compensating: 1 }),
      listRuns: () => Promise.resolve([]),
      now: () => Promise.resolve(Date.now()),
    } as unknown as Store,
  });
  metrics.registerWorkflows(["research", "billing"]);
  for (const outcome of STEP_OUTCOMES) metrics.stepFinished("research", outcome, 0.3);
  metrics.checkpointFinished(0.002);
  metrics.claimFinished(0.004);
  for (const reason of HANDOFF_REASONS) metrics.handedOff(reason);
  metrics.recovered("handoff", 0.02);
  metrics.recovered("crash", 10.4);
  metrics.staleWriteRejected();
  for (const resolution of EFFECT_RESOLUTIONS) metrics.effectResolved(resolution);
  metrics.compensationRegistered();
  for (const outcome of COMPENSATION_OUTCOMES) metrics.compensationFinished(outcome);
  metrics.runExecutionFinished("billing", "completed");
  metrics.observeInflight(() => 4);
  const report: ShutdownReport = {
    reason: "SIGTERM",
    startedAt: 0,
    phases: PHASES.map((phase) => ({
      phase,
      startedAt: 0,
      durationMs: 10,
      timedOut: false,
      interrupted: false,
      skipped: false,
      errors: [],
      handlers: [],
    })),
    durationMs: 60,
    escalated: false,
    watchdog: false,
    exitCode: 0,
    details: {},
  };
  metrics.shutdownFinished({
    ...report,
    runs: { ...emptyTally(), inFlight: 2, completed: 1, handedOff: 1 },
  });
  return metrics;
}

describe("promtool check metrics", () => {
  it.runIf(available || inCi)("passes on Baton's exposition, every family populated", async () => {
    expect(
      available,
      "promtool is missing: install the Debian package `prometheus` (apt-get install -y prometheus)",
    ).toBe(true);
    const text = await populated().metrics();
    const check = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(`${check.stdout}${check.stderr}`.trim()).toBe("");
    expect(check.status).toBe(0);
  });

  it.runIf(available)("would catch a family that breaks the conventions", () => {
    const bad =
      "# HELP baton_bad_seconds x\n# TYPE baton_bad_seconds counter\nbaton_bad_seconds 1\n";
    const check = spawnSync(PROMTOOL, ["check", "metrics"], { input: bad, encoding: "utf8" });
    expect(check.status).not.toBe(0);
    expect(`${check.stdout}${check.stderr}`).toMatch(/_total/);
  });
});
