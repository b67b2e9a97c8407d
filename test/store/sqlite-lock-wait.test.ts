import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { tempDir } from "../support/temp-dir.js";

const LEASE_MS = 10_000;
const HOLD_MS = 800;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * Another process takes SQLite's write lock and holds it for `HOLD_MS`; it prints `locked`,
 * then, just before it commits, the time at which it lets go.
 */
async function holdWriteLock(path: string) {
  const script = `
    const Database = require("better-sqlite3");
    const db = new Database(${JSON.stringify(path)});
    db.prepare("BEGIN IMMEDIATE").run();
    console.log("locked");
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${HOLD_MS});
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

describe("SQLite under a held write lock", () => {
  it("stamps a claim and its lease once it has the lock, not when it started waiting", async () => {
    const dir = tempDir();
    const path = join(dir.path, "baton.db");
    const store = new SqliteStore({ path });
    cleanups.push(
      () => dir.remove(),
      () => store.close(),
    );
    await store.createRun({ id: "r1", workflow: "wf", version: 1, input: null, priority: 0 });

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
    const dir = tempDir();
    const path = join(dir.path, "baton.db");
    const store = new SqliteStore({ path });
    cleanups.push(
      () => dir.remove(),
      () => store.close(),
    );
    await store.createRun({ id: "r1", workflow: "wf", version: 1, input: null, priority: 0 });
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
});
