/**
 * Baton on PostgreSQL, imported from this checkout's source (`../../src`, run by tsx),
 * with a worker in the same process. A run is started with `baton.start` and is done
 * when the store has committed `completeRun` — observed by a thin subclass of the store,
 * so the caller does not poll.
 */
import { Baton, defineWorkflow } from "../../src/index.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import type { Lease } from "../../src/store/store.js";
import { Probe, type System } from "./workload.js";

/** Resolves a waiter when a run's completion has been committed. */
class CompletionStore extends PostgresStore {
  private readonly waiters = new Map<string, () => void>();

  completion(runId: string): Promise<void> {
    return new Promise((resolve) => this.waiters.set(runId, resolve));
  }

  override async completeRun(lease: Lease, output: string | null): Promise<boolean> {
    const done = await super.completeRun(lease, output);
    if (done) {
      this.waiters.get(lease.runId)?.();
      this.waiters.delete(lease.runId);
    }
    return done;
  }
}

export async function openBaton(url: string, concurrency: number): Promise<System> {
  const probe = new Probe();
  const threeSteps = defineWorkflow({ name: "three-steps" }, async (ctx) => {
    const [one, two, three] = probe.steps();
    const a = await ctx.step("one", one);
    const b = await ctx.step("two", two);
    const c = await ctx.step("three", three);
    return a + b + c;
  });
  const store = new CompletionStore({ connectionString: url, schema: "baton" });
  const baton = await Baton.open({ store, workflows: [threeSteps] });
  const worker = baton.worker({ concurrency, handleSignals: false });
  await worker.start();
  return {
    name: "Baton",
    probe,
    async run(key) {
      const done = store.completion(key);
      await baton.start(threeSteps, null, { id: key });
      await done;
    },
    async close() {
      await worker.stop();
      await baton.close();
      await store.close();
    },
  };
}
