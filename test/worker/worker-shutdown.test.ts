import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, defineWorkflow } from "../../src/index.js";
import { openTestBaton, type TestBaton } from "../support/baton-harness.js";
import { waitFor } from "../support/wait-for.js";

let t: TestBaton;
afterEach(() => t?.close());

const wf = defineWorkflow({ name: "two-steps" }, async (ctx) => {
  // Long enough that the run is still in its first step when the test stops the worker.
  await ctx.step("a", () => new Promise((r) => setTimeout(r, 1_000)));
  await ctx.step("b", () => 2);
  return "done";
});

describe("worker shutdown", () => {
  it("refuses at start a budget whose phases cannot fit, with the arithmetic", async () => {
    t = await openTestBaton({ workflows: [wf] });
    const error = (() => {
      try {
        t.baton.worker({ graceMs: 5_000, preStopDelayMs: 3_000 });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/5000.*3000.*raise graceMs/s);
  });

  it("stop() twice returns one promise, and the report counts the run handed off", async () => {
    t = await openTestBaton({ workflows: [wf] });
    const worker = await t.startWorker();
    await t.baton.start(wf, null, { id: "r" });
    await waitFor(async () => (await t.baton.get("r"))!.status === "running");
    const first = worker.stop("first");
    expect(worker.stop("second")).toBe(first);
    const report = await first;
    expect(report.reason).toBe("first");
    expect(report.exitCode).toBe(0);
    expect(report.runs).toMatchObject({ inFlight: 1, handedOff: 1 });
    expect(report.phases.map((p) => p.phase)).toEqual([
      "notReady",
      "preStop",
      "stopIntake",
      "drain",
      "finalize",
      "close",
    ]);
    expect(worker.state).toBe("stopped");
    expect(worker.lifecycle.ready).toBe(false);
  });

  it("starts no step that its learned duration says cannot finish before the step deadline (mode drain)", async () => {
    const slowSteps = defineWorkflow({ name: "slow-steps", onShutdown: "drain" }, async (ctx) => {
      for (let i = 0; i < 50; i++)
        await ctx.step(`s${i % 2}`, () => new Promise((r) => setTimeout(r, 400)));
      return "done";
    });
    t = await openTestBaton({ workflows: [slowSteps] });
    // graceMs 7500: the drain phase ends 2500 ms into shutdown (7500 - 1000 margin - 2000
    // finalize - 2000 close) after 1400 ms of its own; the step deadline is 280 ms before that.
    const worker = await t.startWorker({ graceMs: 7_500 });
    await t.baton.start(slowSteps, null, { id: "slow" });
    await waitFor(async () => (await t.baton.get("slow"))!.steps.length >= 2); // durations learned
    const stoppedAt = Date.now();
    const report = await worker.stop();
    expect(report.runs).toMatchObject({ handedOff: 1, failedToCheckpoint: 0 });
    const steps = (await t.baton.get("slow"))!.steps;
    // Every step it started finished, and none started with less than its ~400 ms left
    // before the step deadline (without drain-aware dispatch, the last would start anywhere
    // in the final 400 ms).
    expect(steps.every((s) => s.status === "completed")).toBe(true);
    const stepDeadline = stoppedAt + 2_500 - 280;
    expect(Math.max(...steps.map((s) => s.startedAt!))).toBeLessThanOrEqual(stepDeadline - 350);
    // It kept working during the drain rather than stopping at once.
    expect(steps.filter((s) => s.updatedAt > stoppedAt).length).toBeGreaterThanOrEqual(3);
  });
});
