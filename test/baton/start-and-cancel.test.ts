import { afterEach, describe, expect, it } from "vitest";
import {
  Baton,
  CancelledError,
  ConfigError,
  defineWorkflow,
  LeaseLostError,
  ValidationError,
} from "../../src/index.js";
import { openTestBaton, type TestBaton } from "../support/baton-harness.js";
import { waitFor } from "../support/wait-for.js";

let t: TestBaton;
afterEach(() => t?.close());

const echo = defineWorkflow({ name: "echo" }, async (ctx, input: unknown) =>
  ctx.step("echo", () => input),
);

describe("start", () => {
  it("is idempotent on a user-given id: one run, one execution", async () => {
    let executions = 0;
    const once = defineWorkflow({ name: "once" }, async (ctx, input: { n: number }) =>
      ctx.step("work", () => {
        executions++;
        return input.n;
      }),
    );
    t = await openTestBaton({ workflows: [once] });
    await t.startWorker();
    const first = await t.baton.start(once, { n: 1 }, { id: "order-7" });
    const second = await t.baton.start(once, { n: 2 }, { id: "order-7" });
    expect([first.created, second.created]).toEqual([true, false]);
    expect(await second.result()).toBe(1);
    expect(executions).toBe(1);
    expect(await t.baton.list()).toHaveLength(1);
  });

  it("refuses an id that belongs to a run of another workflow", async () => {
    const other = defineWorkflow({ name: "other" }, () => Promise.resolve(1));
    t = await openTestBaton({ workflows: [echo, other] });
    await t.baton.start(echo, 1, { id: "shared" });
    await expect(t.baton.start(other, null, { id: "shared" })).rejects.toThrow(
      /already belongs to a run of workflow "echo"/,
    );
  });
});

describe("bad input is refused at the door, and the store stays intact", () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ["a function", { cb: () => 1 }, /input of run .*\.cb is a function/],
    ["a bigint", { n: 10n }, /\.n is a bigint.*convert it to a string/],
    [
      "a cycle",
      (() => {
        const o: Record<string, unknown> = {};
        o.self = o;
        return o;
      })(),
      /refers back to itself/,
    ],
    ["NaN", [1, NaN], /\[1\] is NaN/],
  ];
  it.each(cases)("input with %s", async (_label, input, message) => {
    t = await openTestBaton({ workflows: [echo] });
    await t.baton.start(echo, "kept", { id: "before" });
    const error = await t.baton.start(echo, input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toMatch(message);
    expect((await t.baton.list()).map((r) => [r.id, r.input])).toEqual([["before", "kept"]]);
  });

  it("an unknown workflow", async () => {
    t = await openTestBaton({ workflows: [echo] });
    await expect(t.baton.start("ech0", {})).rejects.toThrow(
      /unknown workflow "ech0"; known here or to this store's workers: echo/,
    );
    expect(await t.baton.list()).toEqual([]);
  });

  it("input over the size limit", async () => {
    t = await openTestBaton({ workflows: [echo], maxPayloadBytes: 2048 });
    const error = await t.baton.start(echo, "x".repeat(5000)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toMatch(
      /input of run .* is 5002 bytes of JSON, over the limit of 2048/,
    );
  });

  it("a step output over the size limit fails the run with a clear error, journal intact", async () => {
    const big = defineWorkflow({ name: "big" }, async (ctx) => {
      await ctx.step("small", () => "fine");
      return ctx.step("huge", () => "y".repeat(4000));
    });
    t = await openTestBaton({ workflows: [big], maxPayloadBytes: 2048 });
    await t.startWorker();
    const run = await t.baton.start(big, null);
    await expect(run.result()).rejects.toThrow(
      /output of step "huge" of run .* is 4002 bytes of JSON, over the limit of 2048/,
    );
    const details = (await t.baton.get(run.id))!;
    expect(details.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ["small", "completed", 1],
      ["huge", "failed", 1],
    ]);
  });

  it("a workflow output over the size limit fails the run", async () => {
    const big = defineWorkflow({ name: "big-out" }, () => Promise.resolve("z".repeat(4000)));
    t = await openTestBaton({ workflows: [big], maxPayloadBytes: 2048 });
    await t.startWorker();
    await expect((await t.baton.start(big, null)).result()).rejects.toThrow(
      /output of run .* over the limit/,
    );
  });

  it("options that are not valid", async () => {
    await expect(Baton.open({ store: "mysql://x" })).rejects.toThrow(ConfigError);
    expect(() => defineWorkflow({ name: "bad name!" }, () => Promise.resolve())).toThrow(
      /workflow name "bad name!" is invalid/,
    );
    t = await openTestBaton({ workflows: [echo] });
    expect(() => t.baton.worker({ concurrency: 0 })).toThrow(/worker option concurrency/);
    expect(() => t.baton.worker({ leaseMs: 3000, heartbeatMs: 2000 })).toThrow(
      /more than a third of leaseMs 3000/,
    );
  });
});

describe("cancel", () => {
  it("cancels a queued run before it starts", async () => {
    t = await openTestBaton({ workflows: [echo] });
    const run = await t.baton.start(echo, 1);
    expect((await t.baton.cancel(run.id)).status).toBe("cancelled");
    await expect(run.result()).rejects.toBeInstanceOf(CancelledError);
    await t.startWorker();
    await new Promise((r) => setTimeout(r, 100));
    expect((await t.baton.get(run.id))!.steps).toEqual([]);
  });

  it("stops a running run: its signal aborts, no further step starts", async () => {
    const started: string[] = [];
    let abortReason: unknown;
    const long = defineWorkflow({ name: "long" }, async (ctx) => {
      await ctx.step("wait", async (s) => {
        started.push("wait");
        await new Promise<void>((resolve) => {
          s.signal.addEventListener("abort", () => {
            abortReason = s.signal.reason;
            resolve();
          });
        });
      });
      await ctx.step("next", () => void started.push("next"));
    });
    t = await openTestBaton({ workflows: [long] });
    await t.startWorker({ leaseMs: 300 });
    const run = await t.baton.start(long, null);
    await waitFor(() => started.length === 1);
    await t.baton.cancel(run.id);
    await waitFor(() => abortReason !== undefined);
    expect(abortReason).toBeInstanceOf(LeaseLostError);
    await new Promise((r) => setTimeout(r, 100));
    expect(started).toEqual(["wait"]);
    const details = (await t.baton.get(run.id))!;
    expect(details.status).toBe("cancelled");
    expect(details.steps).toEqual([]);
    expect(details.events.map((e) => e.kind)).toEqual([
      "created",
      "claimed",
      "cancelled",
      "lease-lost",
    ]);
  });

  it("leaves a finished run as it is and refuses an unknown id", async () => {
    t = await openTestBaton({ workflows: [echo] });
    await t.startWorker();
    const run = await t.baton.start(echo, 5);
    await run.result();
    expect((await t.baton.cancel(run.id)).status).toBe("completed");
    await expect(t.baton.cancel("nope")).rejects.toThrow(/run nope does not exist/);
  });
});
