import { describe, expect, it } from "vitest";
import { LifecycleConfigError, planBudget } from "../../src/lifecycle/index.js";
import { resolveLifecycleOptions } from "../../src/lifecycle/options.js";

describe("planBudget", () => {
  it("carves the default 30 s budget: drain gets what the fixed phases leave", () => {
    const plan = planBudget();
    expect(plan.usableMs).toBe(29_000);
    expect(plan.drainMs).toBe(29_000 - 100 - 0 - 1000 - 2000 - 2000);
    expect(plan.watchdogMs).toBe(29_500);
    expect(plan.phases.map((p) => [p.name, p.startMs, p.deadlineMs])).toEqual([
      ["notReady", 0, 100],
      ["preStop", 100, 100],
      ["stopIntake", 100, 1100],
      ["drain", 1100, 25_000],
      ["finalize", 25_000, 27_000],
      ["close", 27_000, 29_000],
    ]);
  });

  it("places every deadline inside graceMs - safetyMarginMs and before the watchdog", () => {
    const plan = planBudget({
      graceMs: 10_000,
      safetyMarginMs: 600,
      preStopDelayMs: 2000,
      phaseBudgetsMs: { notReady: 50, close: 500 },
      minDrainMs: 100,
    });
    expect(plan.drainMs).toBe(10_000 - 600 - 50 - 2000 - 1000 - 2000 - 500);
    expect(plan.phases.at(-1)?.deadlineMs).toBe(9400);
    expect(plan.watchdogMs).toBe(9700);
    for (const [i, phase] of plan.phases.entries()) {
      expect(phase.deadlineMs - phase.startMs).toBe(phase.budgetMs);
      if (i > 0) expect(phase.startMs).toBe(plan.phases[i - 1]?.deadlineMs);
    }
  });

  it("accepts a budget that fits exactly, with drain at its minimum", () => {
    const plan = planBudget({
      graceMs: 7100,
      preStopDelayMs: 0,
      minDrainMs: 1000,
    });
    expect(plan.drainMs).toBe(1000);
  });

  it("refuses phases that cannot fit, showing the arithmetic", () => {
    const attempt = () => planBudget({ graceMs: 5000, preStopDelayMs: 3000 });
    expect(attempt).toThrow(LifecycleConfigError);
    expect(attempt).toThrow(
      "graceMs 5000 - safety margin 1000 = 4000 ms, but notReady 100 + preStop 3000 + " +
        "stopIntake 1000 + finalize 2000 + close 2000 + minimum drain 1000 = 9100 ms; " +
        "raise graceMs (terminationGracePeriodSeconds) or shrink a phase",
    );
  });

  it("refuses a budget one millisecond short", () => {
    expect(() => planBudget({ graceMs: 7099 })).toThrow(
      /= 6099 ms, but .* = 6100 ms; raise graceMs/,
    );
  });

  it("names a bad value", () => {
    expect(() => planBudget({ graceMs: -5 })).toThrow(/graceMs = -5 is invalid/);
    expect(() => planBudget({ phaseBudgetsMs: { close: 1.5 } })).toThrow(
      /phaseBudgetsMs\.close = 1\.5 is invalid/,
    );
    expect(() => planBudget({ graceMs: "30s" } as never)).toThrow(/graceMs = "30s" is invalid/);
    expect(() => planBudget({ graceMS: 1000 } as never)).toThrow(
      /unknown lifecycle option: graceMS/,
    );
  });
});

describe("resolveLifecycleOptions", () => {
  it("takes graceMs from BATON_GRACE_MS unless the option is given", () => {
    expect(resolveLifecycleOptions({}, { BATON_GRACE_MS: "60000" }).plan.graceMs).toBe(60_000);
    expect(
      resolveLifecycleOptions({ graceMs: 8000 }, { BATON_GRACE_MS: "60000" }).plan.graceMs,
    ).toBe(8000);
    expect(resolveLifecycleOptions({}, {}).plan.graceMs).toBe(30_000);
  });

  it("refuses a BATON_GRACE_MS that is not a whole number, naming it", () => {
    expect(() => resolveLifecycleOptions({}, { BATON_GRACE_MS: "30s" })).toThrow(
      /BATON_GRACE_MS = "30s" is not a positive whole number/,
    );
  });

  it("refuses hooks that are not functions", () => {
    expect(() => resolveLifecycleOptions({ exit: 1 } as never, {})).toThrow(
      /exit = 1 is invalid: expected a function/,
    );
  });
});
