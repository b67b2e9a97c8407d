import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { tempDir } from "../support/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A stale owner (A, fence 1) writes after B took the run over (fence 2). */
async function staleWriteAfterTakeover(fencing: boolean) {
  const dir = tempDir();
  const store = new SqliteStore({ path: join(dir.path, "f.db"), fencing });
  cleanups.push(
    () => dir.remove(),
    () => store.close(),
  );
  await store.createRun({ id: "r", workflow: "w", version: 1, input: null, priority: 0 });
  const [a] = await store.claimRuns("A", ["w"], 1, 30);
  await new Promise((r) => setTimeout(r, 60));
  const [b] = await store.claimRuns("B", ["w"], 1, 10_000);
  const stale = { runId: "r", fence: a!.fence, workerId: "A" };
  const accepted = await store.writeStep(stale, {
    seq: 0,
    name: "charge",
    kind: "step",
    status: "completed",
    output: '"A"',
    attempts: 1,
  });
  const fresh = { runId: "r", fence: b!.fence, workerId: "B" };
  const freshAccepted = await store.writeStep(fresh, {
    seq: 0,
    name: "charge",
    kind: "step",
    status: "completed",
    output: '"B"',
    attempts: 1,
  });
  return { accepted, freshAccepted, journal: await store.loadJournal("r") };
}

describe("fencing", () => {
  it("refuses the stale owner's write and keeps the new owner's", async () => {
    const { accepted, freshAccepted, journal } = await staleWriteAfterTakeover(true);
    expect([accepted, freshAccepted]).toEqual([false, true]);
    expect(journal.map((e) => [e.output, e.workerId, e.fence])).toEqual([['"B"', "B", 2]]);
  });

  it("switched off, lets the stale owner's result win over the new owner's (what it prevents)", async () => {
    const { accepted, freshAccepted, journal } = await staleWriteAfterTakeover(false);
    expect([accepted, freshAccepted]).toEqual([true, false]);
    expect(journal.map((e) => [e.output, e.workerId, e.fence])).toEqual([['"A"', "A", 1]]);
  });
});
