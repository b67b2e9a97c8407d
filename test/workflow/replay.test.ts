import { afterEach, describe, expect, it } from "vitest";
import { defineWorkflow, NonDeterminismError } from "../../src/index.js";
import { openTestBaton, type TestBaton } from "../support/baton-harness.js";
import { waitFor } from "../support/wait-for.js";

let t: TestBaton;
afterEach(() => t?.close());

describe("replay", () => {
  it("returns recorded values without calling a completed step again", async () => {
    const calls: string[] = [];
    const wf = defineWorkflow({ name: "replay" }, async (ctx, input: { n: number }) => {
      const a = await ctx.step("a", () => {
        calls.push("a");
        return { at: new Date(0), n: input.n };
      });
      await ctx.sleep("nap", 30); // the run is released here and replayed from the top
      const b = await ctx.step("b", () => {
        calls.push("b");
        return a.n + 1;
      });
      return { a, b };
    });
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, { n: 1 });
    // a's Date comes back as a string on the first run too: replay and first run agree.
    expect(await run.result()).toEqual({ a: { at: "1970-01-01T00:00:00.000Z", n: 1 }, b: 2 });
    expect(calls).toEqual(["a", "b"]);
    const events = (await t.baton.get(run.id))!.events.map((e) => e.kind);
    expect(events).toEqual(["created", "claimed", "sleeping", "claimed", "completed"]);
  });

  it("parks a run whose code calls a different step at a recorded sequence", async () => {
    let version = 1;
    const wf = defineWorkflow({ name: "drift" }, async (ctx) => {
      await ctx.step(version === 1 ? "fetch" : "download", () => 1);
      await ctx.sleep("wait", 150);
      return "done";
    });
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, null, { id: "drift-1" });
    // The run sleeps after "fetch"; the code changes while it sleeps.
    await waitFor(async () => (await run.status()).status === "sleeping");
    version = 2;
    await expect(run.result()).rejects.toBeInstanceOf(NonDeterminismError);
    const details = (await t.baton.get("drift-1"))!;
    expect(details.status).toBe("failed");
    expect(details.error?.message).toMatch(/sequence 0 .*step "fetch".*step "download"/);
    // The journal is intact: nothing was written over the recorded step.
    expect(details.steps.map((s) => [s.name, s.status, s.output])).toEqual([
      ["fetch", "completed", 1],
      ["wait", "completed", expect.any(Number)],
    ]);
  });

  it("throws a recorded step failure again on replay instead of re-running the step", async () => {
    let calls = 0;
    const wf = defineWorkflow({ name: "caught" }, async (ctx) => {
      let recovered = "";
      try {
        await ctx.step(
          "boom",
          () => {
            calls++;
            throw new Error("bad tool");
          },
          { retry: { maxAttempts: 1 } },
        );
      } catch (error) {
        recovered = (error as Error).message;
      }
      await ctx.sleep("pause", 30);
      return recovered;
    });
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, null);
    expect(await run.result()).toBe("bad tool");
    expect(calls).toBe(1);
  });

  it("refuses to go on after a halt even when user code swallows it", async () => {
    let afterSwallow = "";
    const wf = defineWorkflow({ name: "swallow" }, async (ctx) => {
      try {
        await ctx.step("a", () => 1);
        await ctx.sleep("nap", 60_000);
      } catch {
        // user code that catches everything
      }
      try {
        await ctx.step("b", () => 2);
      } catch (error) {
        afterSwallow = (error as Error).name;
      }
      return "should not complete";
    });
    t = await openTestBaton({ workflows: [wf] });
    await t.startWorker();
    const run = await t.baton.start(wf, null);
    await waitFor(async () => (await run.status()).status === "sleeping");
    expect(afterSwallow).toBe("RunHalted");
    expect((await t.baton.get(run.id))!.steps.map((s) => s.name)).toEqual(["a", "nap"]);
  });

  it("hands a run off at the next step boundary on stop; another worker resumes it without repeating steps", async () => {
    const calls: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const wf = defineWorkflow({ name: "handoff" }, async (ctx) => {
      await ctx.step("one", async () => {
        calls.push("one");
        await gate;
      });
      await ctx.step("two", () => void calls.push("two"));
      return "done";
    });
    t = await openTestBaton({ workflows: [wf] });
    const first = await t.startWorker();
    const run = await t.baton.start(wf, null);
    await waitFor(() => calls.length === 1);
    const stopping = first.stop();
    release();
    const report = await stopping;
    expect(report.runs).toMatchObject({ inFlight: 1, handedOff: 1, completed: 0 });
    expect(report.exitCode).toBe(0);
    expect((await run.status()).status).toBe("queued");
    await t.startWorker();
    expect(await run.result()).toBe("done");
    expect(calls).toEqual(["one", "two"]);
    const details = (await t.baton.get(run.id))!;
    expect(details.interruptions).toBe(1);
    expect(details.steps.map((s) => [s.name, s.attempts])).toEqual([
      ["one", 1],
      ["two", 1],
    ]);
  });
});
