import { afterEach, describe, expect, it } from "vitest";
import { defineWorkflow, RetryableError, TerminalError } from "../../src/index.js";
import { backoffDelay, resolveRetryPolicy } from "../../src/workflow/retry.js";
import { openTestBaton, type TestBaton } from "../support/baton-harness.js";

let t: TestBaton;
afterEach(() => t?.close());

describe("retries and backoff", () => {
  it("retries a failing step with growing waits, records each failed attempt, and succeeds", async () => {
    const attempts: Array<{ attempt: number; at: number }> = [];
    const wf = defineWorkflow({ name: "flaky" }, async (ctx) =>
      ctx.step(
        "call",
        (s) => {
          attempts.push({ attempt: s.attempt, at: Date.now() });
          if (s.attempt < 3) throw new Error(`failure ${s.attempt}`);
          return "ok";
        },
        { retry: { maxAttempts: 5, initialDelayMs: 40, backoffFactor: 3 } },
      ),
    );
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, null);
    expect(await run.result()).toBe("ok");
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    // Waits of 40 ms then 120 ms, each within the ±20% jitter.
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(32);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(96);
    const [step] = (await t.baton.get(run.id))!.steps;
    expect(step).toMatchObject({ status: "completed", attempts: 3, output: "ok" });
  });

  it("fails the run when attempts run out, with the last error", async () => {
    let calls = 0;
    const wf = defineWorkflow(
      { name: "hopeless", retry: { maxAttempts: 2, initialDelayMs: 1 } },
      async (ctx) =>
        ctx.step("call", () => {
          calls++;
          throw new Error(`down ${calls}`);
        }),
    );
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, null);
    await expect(run.result()).rejects.toThrow("down 2");
    expect(calls).toBe(2);
    const details = (await t.baton.get(run.id))!;
    expect(details.status).toBe("failed");
    expect(details.steps[0]).toMatchObject({
      status: "failed",
      attempts: 2,
      error: { message: "down 2" },
    });
  });

  it("never retries a TerminalError", async () => {
    let calls = 0;
    const wf = defineWorkflow({ name: "terminal" }, async (ctx) =>
      ctx.step("charge", () => {
        calls++;
        throw new TerminalError("card declined");
      }),
    );
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, null);
    const error = await run.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as Error).message).toBe("card declined");
    expect(calls).toBe(1);
  });

  it("waits retryAfterMs when a RetryableError gives it", async () => {
    const at: number[] = [];
    const wf = defineWorkflow({ name: "rate-limited" }, async (ctx) =>
      ctx.step(
        "call",
        (s) => {
          at.push(Date.now());
          if (s.attempt === 1) throw new RetryableError("429", { retryAfterMs: 150 });
          return s.attempt;
        },
        { retry: { initialDelayMs: 1 } },
      ),
    );
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    expect(await (await t.baton.start(wf, null)).result()).toBe(2);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(145);
  });

  it("computes backoff from the policy and caps it", () => {
    const policy = resolveRetryPolicy(
      { initialDelayMs: 100, backoffFactor: 2, maxDelayMs: 300 },
      "test",
    );
    const mid = () => 0.5; // no jitter
    expect([1, 2, 3, 4].map((n) => backoffDelay(policy, n, mid))).toEqual([100, 200, 300, 300]);
    expect(backoffDelay(policy, 1, () => 0)).toBe(80);
    expect(backoffDelay(policy, 1, () => 1)).toBe(120);
    expect(() => resolveRetryPolicy({ maxAttempts: 0 }, 'step "x"')).toThrow(
      /retry policy of step "x": maxAttempts/,
    );
  });
});

describe("progress", () => {
  it("gives the next attempt the progress an earlier attempt saved", async () => {
    const seen: unknown[] = [];
    const wf = defineWorkflow({ name: "progress" }, async (ctx) =>
      ctx.step<number, { upTo: number }>(
        "batch",
        async (s) => {
          seen.push(s.progress);
          const from = s.progress?.upTo ?? 0;
          for (let i = from; i < 5; i++) {
            if (s.attempt === 1 && i === 3) throw new Error("crashed at 3");
            await s.saveProgress({ upTo: i + 1 });
          }
          return from;
        },
        { retry: { initialDelayMs: 1 } },
      ),
    );
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, null);
    expect(await run.result()).toBe(3);
    expect(seen).toEqual([undefined, { upTo: 3 }]);
    // Progress is dropped once the step's result is recorded.
    expect((await t.baton.get(run.id))!.steps[0]!.progress).toBeUndefined();
  });
});
