import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { Baton, defineWorkflow, type BatonOptions } from "../../src/index.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { Store, StepWrite } from "../../src/store/store.js";
import { tempDir } from "../support/temp-dir.js";
import { waitFor } from "../support/wait-for.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Faults = {
  /** Called before each journal write reaches the real store; may throw or wait. */
  beforeWrite?: (write: StepWrite) => Promise<void> | void;
  /**
   * Set while the worker is "frozen" (SIGSTOP): its lease renewals fail and it claims
   * nothing, so it cannot take its own run over in the meantime.
   */
  frozen?: Promise<void>;
};

/** A real SQLite store with faults injected in front of it. */
function faultyStore(path: string, faults: Faults): Store {
  const store = new SqliteStore({ path });
  return new Proxy(store, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== "function") return value;
      const method = (value as (...a: unknown[]) => Promise<unknown>).bind(target);
      if (key === "writeStep")
        return async (lease: unknown, write: StepWrite) => {
          await faults.beforeWrite?.(write);
          return method(lease, write);
        };
      if (key === "renewLeases")
        return (...args: unknown[]) =>
          faults.frozen ? Promise.reject(new Error("frozen")) : method(...args);
      if (key === "claimRuns")
        return (...args: unknown[]) => (faults.frozen ? Promise.resolve([]) : method(...args));
      return method;
    },
  });
}

async function openBaton(faults: Faults, workflows: BatonOptions["workflows"]) {
  const dir = tempDir();
  const path = join(dir.path, "baton.db");
  const baton = await Baton.open({ store: faultyStore(path, faults), workflows });
  const observer = new SqliteStore({ path });
  cleanups.push(
    () => dir.remove(),
    () => baton.close(),
    () => observer.close(),
  );
  return { baton, observer };
}

describe("when the store misbehaves under a run", () => {
  it("a journal write that throws releases the run for another attempt; the run does not fail", async () => {
    const calls: string[] = [];
    const wf = defineWorkflow({ name: "busy-db" }, async (ctx) => {
      await ctx.step("one", () => void calls.push("one"));
      await ctx.step("two", () => void calls.push("two"));
      return "done";
    });
    let failures = 0;
    const faults: Faults = {
      beforeWrite: (write) => {
        if (write.name === "two" && write.status === "completed" && failures++ === 0) {
          throw Object.assign(new Error("database is locked"), { code: "SQLITE_BUSY" });
        }
      },
    };
    const { baton, observer } = await openBaton(faults, [wf]);
    const worker = baton.worker({ handleSignals: false, leaseMs: 30_000, pollMs: 50 });
    await worker.start();
    cleanups.push(() => worker.stop().then(() => undefined));

    const run = await baton.start(wf, null, { id: "busy-1" });
    expect(await run.result()).toBe("done");

    // The completed step was not run again; the one whose record was lost was.
    expect(calls).toEqual(["one", "two", "two"]);
    const events = (await observer.listEvents("busy-1")).map((e) => e.kind);
    expect(events).not.toContain("failed");
    // Released at once (a handoff), not left for the 30 s lease to run out.
    expect(events).toEqual(["created", "claimed", "handoff", "claimed", "completed"]);
  });

  it("an effect is not called when its lease ran out while the intent was being written", async () => {
    const LEASE_MS = 400;
    const calls: Array<{ fence: number; key: string }> = [];
    const wf = defineWorkflow({ name: "frozen-intent" }, async (ctx) =>
      ctx.effect("charge", {
        run: (e) => {
          calls.push({ fence: e.fence, key: e.idempotencyKey });
          return "charged";
        },
      }),
    );
    let stalls = 0;
    const faults: Faults = {};
    faults.beforeWrite = async (write) => {
      if (write.status !== "pending" || stalls++ > 0) return;
      // The worker freezes inside its intent write for longer than its lease.
      faults.frozen = sleep(LEASE_MS * 2);
      await faults.frozen;
      faults.frozen = undefined;
    };
    const { baton, observer } = await openBaton(faults, [wf]);
    const worker = baton.worker({
      handleSignals: false,
      leaseMs: LEASE_MS,
      heartbeatMs: 100,
      pollMs: 50,
    });
    await worker.start();
    cleanups.push(() => worker.stop().then(() => undefined));

    const run = await baton.start(wf, null, { id: "frozen-1" });
    expect(await run.result()).toBe("charged");

    // Never called on the first lease (fence 1): only by the owner that took the run over,
    // with the same key.
    expect(calls).toEqual([{ fence: 2, key: "frozen-1:0:charge" }]);
    await waitFor(async () => (await observer.getRun("frozen-1"))!.status === "completed");
    const events = (await observer.listEvents("frozen-1")).map((e) => e.kind);
    expect(events).toContain("takeover");
  });
});
