import { afterEach, describe, expect, it } from "vitest";
import { defineWorkflow, type EffectContext } from "../../src/index.js";
import { openTestBaton, type TestBaton } from "../support/baton-harness.js";

let t: TestBaton;
afterEach(() => t?.close());

/** Leaves an effect's intent in the journal as a worker that died inside the call would. */
async function crashInsideEffect(tb: TestBaton, runId: string, workflow: string) {
  const [claimed] = await tb.baton.store.claimRuns("dead-worker", [workflow], 1, 100);
  const lease = { runId, fence: claimed!.fence, workerId: "dead-worker" };
  await tb.baton.store.writeStep(lease, {
    seq: 0,
    name: "charge",
    kind: "effect",
    status: "pending",
    attempts: 0,
    idempotencyKey: `${runId}:0:charge`,
  });
  await new Promise((r) => setTimeout(r, 150)); // the dead worker's lease runs out
}

describe("ctx.effect", () => {
  it("runs once with a stable key and the run's fence, records intent then result, and replays without running", async () => {
    const seen: Array<{ key: string; fence: number; attempt: number }> = [];
    const wf = defineWorkflow({ name: "pay" }, async (ctx) => {
      const receipt = await ctx.effect("charge", {
        run: (e) => {
          seen.push({ key: e.idempotencyKey, fence: e.fence, attempt: e.attempt });
          return { receipt: "r-1" };
        },
      });
      await ctx.sleep("settle", 20); // released and replayed from the top
      return receipt;
    });
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, null, { id: "pay-1" });
    expect(await run.result()).toEqual({ receipt: "r-1" });
    expect(seen).toEqual([{ key: "pay-1:0:charge", fence: 1, attempt: 1 }]);
    const [charge] = (await t.baton.get("pay-1"))!.steps;
    expect(charge).toMatchObject({
      kind: "effect",
      status: "completed",
      output: { receipt: "r-1" },
      idempotencyKey: "pay-1:0:charge",
    });
  });

  it("keeps the key across retries, and takes a key the user gives", async () => {
    const keys: string[] = [];
    const wf = defineWorkflow({ name: "retry-pay" }, async (ctx) =>
      ctx.effect(
        "charge",
        {
          idempotencyKey: "order-77",
          run: (e: EffectContext) => {
            keys.push(e.idempotencyKey);
            if (e.attempt < 3) throw new Error("gateway timeout");
            return "ok";
          },
        },
        { retry: { initialDelayMs: 1 } },
      ),
    );
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    expect(await (await t.baton.start(wf, null)).result()).toBe("ok");
    expect(keys).toEqual(["order-77", "order-77", "order-77"]);
  });

  describe("an unknown outcome (intent without result)", () => {
    const make = (name: string, withCheck: boolean, applied: boolean, calls: string[]) =>
      defineWorkflow({ name }, async (ctx) =>
        ctx.effect("charge", {
          run: (e) => {
            calls.push(`run ${e.idempotencyKey}`);
            return "charged";
          },
          ...(withCheck
            ? {
                check: (e: EffectContext) => {
                  calls.push(`check ${e.idempotencyKey}`);
                  return applied
                    ? { done: true as const, result: "found" }
                    : { done: false as const };
                },
              }
            : {}),
        }),
      );

    it.each([
      [
        "check says done: the result is recorded, run is not called",
        true,
        true,
        ["check u:0:charge"],
        "found",
        "checked-done",
      ],
      [
        "check says not done: run again with the same key",
        true,
        false,
        ["check u:0:charge", "run u:0:charge"],
        "charged",
        "checked-not-done",
      ],
      [
        "no check: run again with the same key (at-least-once)",
        false,
        false,
        ["run u:0:charge"],
        "charged",
        "rerun-unchecked",
      ],
    ] as const)("%s", async (_label, withCheck, applied, expectedCalls, result, resolution) => {
      const calls: string[] = [];
      const wf = make("unknown", withCheck, applied, calls);
      t = await openTestBaton({ workflows: [wf] });
      await t.baton.start(wf, null, { id: "u" });
      await crashInsideEffect(t, "u", "unknown");
      await t.startWorker();
      expect(await (await t.baton.start(wf, null, { id: "u" })).result()).toBe(result);
      expect(calls).toEqual(expectedCalls);
      const details = (await t.baton.get("u"))!;
      const resolved = details.events.filter((e) => e.kind === "effect-resolved");
      expect(resolved.map((e) => JSON.parse(e.detail!) as unknown)).toEqual([
        { seq: 0, name: "charge", idempotencyKey: "u:0:charge", resolution },
      ]);
    });
  });
});

describe("compensation", () => {
  type Log = string[];
  const saga = (log: Log, failAt: string | undefined, name = "saga") =>
    defineWorkflow({ name, retry: { maxAttempts: 1 } }, async (ctx) => {
      await ctx.step("reserve", () => void log.push("reserve"), {
        compensate: (c) => void log.push(`undo reserve (${c.reason?.name}) ${c.idempotencyKey}`),
      });
      await ctx.step("note", () => void log.push("note")); // nothing to undo
      const charged = await ctx.effect("charge", {
        run: () => (log.push("charge"), { amount: 42 }),
        compensate: (c, result) => void log.push(`refund ${result.amount}`),
      });
      await ctx.step("ship", () => {
        if (failAt === "ship") throw new Error("warehouse on fire");
        log.push("ship");
      });
      return charged;
    });

  it("undoes completed steps in reverse order when a step fails, and ends compensated", async () => {
    const log: Log = [];
    const wf = saga(log, "ship");
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, null, { id: "s1" });
    await expect(run.result()).rejects.toThrow("warehouse on fire");
    expect(log).toEqual([
      "reserve",
      "note",
      "charge",
      "refund 42",
      "undo reserve (Error) s1:0:reserve:compensate",
    ]);
    const details = (await t.baton.get("s1"))!;
    expect(details.status).toBe("compensated");
    expect(details.error?.message).toBe("warehouse on fire");
    expect(
      details.steps
        .filter((s) => s.kind === "compensation")
        .map((s) => [s.name, s.status, s.idempotencyKey]),
    ).toEqual([
      ["compensate:reserve", "completed", "s1:0:reserve:compensate"],
      ["compensate:charge", "completed", "s1:2:charge:compensate"],
    ]);
    expect(details.events.map((e) => e.kind)).toEqual([
      "created",
      "claimed",
      "compensating",
      "compensated",
    ]);
  });

  it("fails a run with nothing to undo, as before", async () => {
    const wf = defineWorkflow({ name: "plain", retry: { maxAttempts: 1 } }, async (ctx) =>
      ctx.step("x", () => {
        throw new Error("nope");
      }),
    );
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, null);
    await expect(run.result()).rejects.toThrow("nope");
    expect((await run.status()).status).toBe("failed");
  });

  it("cancel with compensate undoes what a running run did; cancel without does not", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const log: Log = [];
    const wf = defineWorkflow({ name: "long-saga" }, async (ctx) => {
      await ctx.step("book", () => void log.push("book"), {
        compensate: () => void log.push("unbook"),
      });
      await ctx.step("wait", async (s) => {
        await Promise.race([gate, new Promise((r) => s.signal.addEventListener("abort", r))]);
      });
      await ctx.step("never", () => void log.push("never"));
    });
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const a = await t.baton.start(wf, null, { id: "a" });
    const b = await t.baton.start(wf, null, { id: "b" });
    await waitForLog(log, ["book", "book"]);
    expect((await t.baton.cancel("a", { compensate: true })).status).toBe("compensating");
    expect((await t.baton.cancel("b")).status).toBe("cancelled");
    await expect(a.result()).rejects.toThrow(/cancelled/);
    await waitUntil(async () => (await a.status()).status === "compensated");
    release();
    await new Promise((r) => setTimeout(r, 100));
    expect(log).toEqual(["book", "book", "unbook"]);
    expect((await b.status()).status).toBe("cancelled");
  });

  it("parks a run whose compensation keeps failing, with what is left to undo", async () => {
    const wf = defineWorkflow(
      { name: "stuck", retry: { maxAttempts: 2, initialDelayMs: 1 } },
      async (ctx) => {
        await ctx.step("first", () => 1, { compensate: () => undefined });
        await ctx.step("second", () => 2, {
          compensate: () => {
            throw new Error("refund API down");
          },
        });
        await ctx.step("boom", () => {
          throw new Error("boom");
        });
      },
    );
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, null, { id: "stuck-1" });
    const error = await run.result().catch((e: unknown) => e);
    expect((error as Error).name).toBe("CompensationFailedError");
    expect((error as Error).message).toMatch(
      /compensation of step "second" failed after its retries \(refund API down\).*still to run: "first"/,
    );
    const details = (await t.baton.get("stuck-1"))!;
    expect(details.status).toBe("failed");
    expect(details.steps.find((s) => s.name === "compensate:second")).toMatchObject({
      status: "failed",
      attempts: 2,
    });
    expect(details.steps.find((s) => s.name === "compensate:first")).toBeUndefined();
  });

  it("compensates a run not resumed within abandonAfterMs", async () => {
    const log: Log = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const wf = defineWorkflow({ name: "abandonable", abandonAfterMs: 200 }, async (ctx) => {
      await ctx.step("hold", () => void log.push("hold"), {
        compensate: () => void log.push("release hold"),
      });
      await ctx.step("slow", () => gate);
      await ctx.step("after", () => void log.push("after"));
    });
    t = await openTestBaton({ workflows: [wf] });
    const first = await t.startWorker();
    const run = await t.baton.start(wf, null, { id: "ab" });
    await waitForLog(log, ["hold"]);
    const stopping = first.stop();
    release();
    expect((await stopping).runs.handedOff).toBe(1);
    await new Promise((r) => setTimeout(r, 400)); // nobody resumes it in time
    await t.startWorker();
    await waitUntil(async () => (await run.status()).status === "compensated");
    expect(log).toEqual(["hold", "release hold"]);
    const kinds = (await t.baton.get("ab"))!.events.map((e) => e.kind);
    expect(kinds).toEqual(["created", "claimed", "handoff", "abandoned", "claimed", "compensated"]);
  });

  it("onShutdown compensate: a stopping worker marks the run, another undoes it", async () => {
    const log: Log = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const wf = defineWorkflow({ name: "undo-on-stop", onShutdown: "compensate" }, async (ctx) => {
      await ctx.step("open", () => void log.push("open"), {
        compensate: () => void log.push("close"),
      });
      await ctx.step("slow", () => gate);
      await ctx.step("after", () => void log.push("after"));
    });
    t = await openTestBaton({ workflows: [wf] });
    const first = await t.startWorker();
    const run = await t.baton.start(wf, null);
    await waitForLog(log, ["open"]);
    const stopping = first.stop();
    release();
    expect((await stopping).runs).toMatchObject({ toCompensate: 1, handedOff: 0 });
    expect((await run.status()).status).toBe("compensating");
    await t.startWorker();
    await waitUntil(async () => (await run.status()).status === "compensated");
    expect(log).toEqual(["open", "close"]);
  });
});

async function waitForLog(log: string[], expected: string[]) {
  await waitUntil(() => log.length >= expected.length);
  expect(log.slice(0, expected.length)).toEqual(expected);
}

async function waitUntil(check: () => boolean | Promise<boolean>) {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}
