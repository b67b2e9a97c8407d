import { join } from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { ActiveRun } from "../../src/worker/active-run.js";
import { LeaseKeeper } from "../../src/worker/lease-keeper.js";
import { LeaseLostError } from "../../src/workflow/errors.js";
import { tempDir } from "../support/temp-dir.js";

const LEASE_MS = 60_000;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A real store with two claimed runs of one worker, and that worker's lease keeper. */
async function twoClaimedRuns() {
  const dir = tempDir();
  const store = new SqliteStore({ path: join(dir.path, "baton.db") });
  cleanups.push(
    () => dir.remove(),
    () => store.close(),
  );
  for (const id of ["fresh", "frozen"])
    await store.createRun({ id, workflow: "wf", version: 1, input: null, priority: 0 });
  const claimed = await store.claimRuns("w1", ["wf"], 2, LEASE_MS);
  const runs = new Map<string, ActiveRun>();
  for (const run of claimed) {
    const lease = { runId: run.id, fence: run.fence, workerId: "w1" };
    runs.set(run.id, new ActiveRun(lease, Date.now() + LEASE_MS, "wf"));
  }
  const keeper = new LeaseKeeper(store, "w1", LEASE_MS, 1_000, runs, pino({ level: "silent" }));
  const expiresAt = async (id: string) => (await store.getRun(id))!.leaseExpiresAt!;
  return { store, runs, keeper, expiresAt };
}

describe("LeaseKeeper", () => {
  it("renews the runs it still vouches for, and never a run whose lease ran out while it could not renew", async () => {
    const { runs, keeper, expiresAt } = await twoClaimedRuns();
    const fresh = runs.get("fresh")!;
    const frozen = runs.get("frozen")!;
    // The process was frozen (SIGSTOP) past this run's lease: its trust has run out.
    frozen.validUntil = Date.now() - 1;
    const before = { fresh: await expiresAt("fresh"), frozen: await expiresAt("frozen") };
    await new Promise((resolve) => setTimeout(resolve, 20));

    await keeper.beat();

    expect(await expiresAt("fresh")).toBeGreaterThan(before.fresh);
    expect(fresh.signal.aborted).toBe(false);
    // Not renewed: another worker may take it over once the stored lease has expired.
    expect(await expiresAt("frozen")).toBe(before.frozen);
    expect(frozen.signal.aborted).toBe(true);
    expect(frozen.signal.reason).toBeInstanceOf(LeaseLostError);
  });

  it("does not renew a run that has already stopped on this worker", async () => {
    const { runs, keeper, expiresAt } = await twoClaimedRuns();
    const stopped = runs.get("frozen")!;
    stopped.loseLease(new LeaseLostError("stopped by a test"));
    const before = await expiresAt("frozen");
    await new Promise((resolve) => setTimeout(resolve, 20));

    await keeper.beat();

    expect(await expiresAt("frozen")).toBe(before);
  });
});
