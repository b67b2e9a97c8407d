import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { StepWrite } from "../../src/store/store.js";
import { tempDir } from "../support/temp-dir.js";

const LEASE_MS = 10_000;
const BUSY: unknown = expect.stringMatching(/^SQLITE_BUSY/);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * Another process takes SQLite's write lock and holds it for `holdMs`; it prints `locked`,
 * then, just before it commits, the time at which it lets go.
 */
async function holdWriteLock(path: string, holdMs = 800) {
  const script = `
    const Database = require("better-sqlite3");
    const db = new Database(${JSON.stringify(path)});
    db.prepare("BEGIN IMMEDIATE").run();
    console.log("locked");
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${holdMs});
    console.log(String(Date.now()));
    db.prepare("COMMIT").run();
    db.close();`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  cleanups.push(() => void child.kill("SIGKILL"));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  expect((await lines.next()).value).toBe("locked");
  return {
    releasedAt: async () => Number((await lines.next()).value),
    exited: once(child, "exit"),
  };
}

/** The journal write of a step `one` that completed with output `1`. */
function completedStep(): StepWrite {
  return {
    seq: 0,
    name: "one",
    kind: "step",
    status: "completed",
    output: "1",
    attempts: 1,
    startedAt: Date.now(),
  };
}

/** A fresh SQLite store with one queued run, `r1`; closed and removed after the test. */
async function storeWithOneRun(options: { busyTimeoutMs?: number } = {}) {
  const dir = tempDir();
  const path = join(dir.path, "baton.db");
  const store = new SqliteStore({ path, ...options });
  cleanups.push(
    () => dir.remove(),
    () => store.close(),
  );
  await store.createRun({ id: "r1", workflow: "wf", version: 1, input: null, priority: 0 });
  return { path, store };
}

describe("SQLite under a held write lock", () => {
  it("stamps a claim and its lease once it has the lock, not when it started waiting", async () => {
    const { path, store } = await storeWithOneRun();

    const holder = await holdWriteLock(path);
    const [claimed] = await store.claimRuns("w1", ["wf"], 1, LEASE_MS); // waits for the lock
    const releasedAt = await holder.releasedAt();
    await holder.exited;

    expect(claimed?.id).toBe("r1");
    const claimedEvent = (await store.listEvents("r1")).find((e) => e.kind === "claimed")!;
    expect(claimedEvent.at).toBeGreaterThanOrEqual(releasedAt);
    // The lease runs its full length from the claim, not from the start of the wait.
    expect(claimed!.leaseExpiresAt! - LEASE_MS).toBeGreaterThanOrEqual(releasedAt);
  });

  it("stamps a renewal once it has the lock", async () => {
    const { path, store } = await storeWithOneRun();
    const [claimed] = await store.claimRuns("w1", ["wf"], 1, LEASE_MS);
    const lease = { runId: "r1", fence: claimed!.fence, workerId: "w1" };

    const holder = await holdWriteLock(path);
    expect(await store.renewLeases("w1", [lease], LEASE_MS)).toEqual([
      { runId: "r1", fence: claimed!.fence },
    ]);
    const releasedAt = await holder.releasedAt();
    await holder.exited;

    expect((await store.getRun("r1"))!.leaseExpiresAt! - LEASE_MS).toBeGreaterThanOrEqual(
      releasedAt,
    );
  });

  it("waits for the lock without blocking the event loop: timers keep firing", async () => {
    const { path, store } = await storeWithOneRun();
    const holder = await holdWriteLock(path, 1_000);

    // A heartbeat, a signal handler or a probe needs its turn while the claim waits.
    let last = Date.now();
    let longestGap = 0;
    const ticker = setInterval(() => {
      longestGap = Math.max(longestGap, Date.now() - last);
      last = Date.now();
    }, 5);
    const lease = store.claimRuns("w1", ["wf"], 1, LEASE_MS);
    const step = store.appendEvent({
      runId: "r1",
      kind: "lease-lost",
      workerId: "w1",
      fence: 1,
      detail: "queued behind the lock",
    });
    const [claimed] = await lease;
    await step;
    clearInterval(ticker);
    longestGap = Math.max(longestGap, Date.now() - last); // up to the end of the wait
    await holder.exited;

    expect(claimed?.id).toBe("r1");
    // SQLite's own busy wait would have stopped every timer for the whole second.
    expect(longestGap).toBeLessThan(500);
  });

  it("gives up with SQLITE_BUSY after busyTimeoutMs, and what was stored is intact", async () => {
    const { path, store } = await storeWithOneRun({ busyTimeoutMs: 200 });
    const [claimed] = await store.claimRuns("w1", ["wf"], 1, LEASE_MS);
    const lease = { runId: "r1", fence: claimed!.fence, workerId: "w1" };
    const holder = await holdWriteLock(path, 1_500);

    const write = store.writeStep(lease, completedStep());
    await expect(write).rejects.toMatchObject({ code: BUSY });
    await expect(store.claimRuns("w2", ["wf"], 1, LEASE_MS)).resolves.toEqual([]);
    await expect(
      store.createRun({ id: "r2", workflow: "wf", version: 1, input: null, priority: 0 }),
    ).rejects.toMatchObject({ code: BUSY });
    await holder.exited;

    // Once the lock is free, the same write goes through; nothing was half-written.
    expect(await store.loadJournal("r1")).toEqual([]);
    expect(await store.writeStep(lease, completedStep())).toBe(true);
    expect((await store.getRun("r1"))!.fence).toBe(claimed!.fence);
  });
});
