import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Baton, defineWorkflow, LeaseLostError } from "../../src/index.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import { tempDir } from "../support/temp-dir.js";
import { waitFor } from "../support/wait-for.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const ALWAYS_WORKS = new Set<PropertyKey>(["onWake", "close", "capabilities", "description"]);

/**
 * A real SQLite store cut off from its worker while `partitioned` is set: every call fails
 * as it would if the database's network went away.
 */
function partitionableStore(path: string) {
  const store = new SqliteStore({ path });
  const state = { partitioned: false, renewals: 0 };
  const wrapped = new Proxy(store, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== "function") return value;
      const method = (value as (...a: unknown[]) => unknown).bind(target);
      if (ALWAYS_WORKS.has(key)) return method;
      return (...args: unknown[]) => {
        if (key === "renewLeases") state.renewals++;
        return state.partitioned ? Promise.reject(new Error("connection lost")) : method(...args);
      };
    },
  });
  return { store: wrapped as Store, state };
}

describe("self-fencing", () => {
  it("a worker that cannot renew stops its runs when the lease would have expired and starts no further step", async () => {
    const dir = tempDir();
    const path = join(dir.path, "baton.db");
    const { store, state } = partitionableStore(path);
    const observer = new SqliteStore({ path }); // a healthy connection, for the test's own reads
    const started: string[] = [];
    let abortedAt = 0;
    let abortReason: unknown;
    const wf = defineWorkflow({ name: "partitioned" }, async (ctx) => {
      await ctx.step("long", async (s) => {
        started.push("long");
        await new Promise<void>((resolve) => {
          s.signal.addEventListener("abort", () => {
            abortedAt = Date.now();
            abortReason = s.signal.reason;
            resolve();
          });
          setTimeout(resolve, 5_000);
        });
      });
      await ctx.step("next", () => void started.push("next"));
    });
    const baton = await Baton.open({ store, workflows: [wf] });
    cleanups.push(
      () => dir.remove(),
      () => observer.close(),
      () => baton.close(),
    );
    const worker = baton.worker({
      handleSignals: false,
      leaseMs: 600,
      heartbeatMs: 100,
      pollMs: 50,
    });
    await worker.start();
    cleanups.push(async () => {
      state.partitioned = false;
      await worker.stop();
    });

    const run = await baton.start(wf, null);
    await waitFor(() => started.length === 1);
    await waitFor(() => state.renewals >= 2); // renewals work at first
    state.partitioned = true;
    const partitionedAt = Date.now();
    await waitFor(() => abortedAt > 0, 5_000);
    expect(abortReason).toBeInstanceOf(LeaseLostError);
    expect((abortReason as Error).message).toMatch(
      /could not renew its lease, which expired \d+ ms ago; it stops the run \(self-fencing\)/,
    );
    // It waited for the lease it had last renewed to run out, no less.
    expect(abortedAt - partitionedAt).toBeGreaterThanOrEqual(600 - 100 - 20);
    await waitFor(() => worker.inFlight === 0);
    expect(started).toEqual(["long"]);
    // The run is left to expire and be taken over; the stranded worker wrote nothing for it.
    expect((await observer.getRun(run.id))!.status).toBe("running");
    expect(await observer.loadJournal(run.id)).toEqual([]);
  });
});
