/**
 * Split brain on PostgreSQL with real `baton worker` processes: the assertions of
 * test/process/split-brain.test.ts.
 *
 * The SQLite file also shows, with `BATON_UNSAFE_DISABLE_FENCING=1`, the stale write
 * that the fence prevents. That switch is implemented only by the SQLite store (the
 * Postgres store's fence checks are part of its statements and cannot be turned off), so
 * that variant is not run here.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Baton } from "../../src/index.js";
import { slow } from "../fixtures/workflows.js";
import { readExecLog } from "../support/exec-log.js";
import { usePostgres } from "../support/postgres.js";
import { tempDir } from "../support/temp-dir.js";
import { waitFor } from "../support/wait-for.js";
import { workerProcesses } from "../support/worker-processes.js";

const postgres = usePostgres();

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("split brain on postgres: a worker stopped past its lease, then continued", () => {
  /**
   * Worker A starts a 400 ms step and is SIGSTOPped inside it, past its 1.5 s lease; its
   * connections stay open but silent. Worker B takes the run over (fence 2). A is
   * SIGCONTed while B is inside the same step: A's step timer is due before A's next
   * heartbeat, so A's first act is the write of its stale result. The fence must refuse it.
   */
  it("has its stale write refused by the fence, aborts locally, starts no further step; the new owner finishes once", async () => {
    const dir = tempDir();
    const schema = await postgres.schema();
    const baton = await Baton.open({ store: schema.url, workflows: [slow] });
    const workers = workerProcesses(schema.url, dir.path);
    cleanups.push(
      () => dir.remove(),
      () => schema.drop(),
      () => baton.close(),
      () => workers.killAll(),
    );

    const a = await workers.start({ leaseMs: 1_500 });
    const run = await baton.start(slow, { slowMs: 400 }, { id: "split" });
    await waitFor(() => readExecLog(workers.logPath).some((l) => l.step === "slow"));
    a.child.kill("SIGSTOP");

    const b = await workers.start({ leaseMs: 1_500 });
    await waitFor(async () =>
      (await baton.get("split"))!.events.some((e) => e.kind === "takeover"),
    );
    a.child.kill("SIGCONT");
    const continuedAt = Date.now();

    expect(await run.result({ timeoutMs: 15_000 })).toBe("after done");
    // Let A act on anything it has left, then look.
    await waitFor(async () =>
      (await baton.get("split"))!.events.some((e) => e.kind === "lease-lost"),
    );
    await new Promise((r) => setTimeout(r, 300));
    const log = readExecLog(workers.logPath);
    const details = (await baton.get("split"))!;

    // Each step's result was recorded by the new owner, with the new fence.
    expect(details.steps.map((s) => [s.name, s.workerId, s.fence])).toEqual([
      ["slow", b.workerId, 2],
      ["after", b.workerId, 2],
    ]);
    // A started nothing after it was continued; "after" ran once, on B.
    expect(log.filter((l) => l.pid === a.pid && l.at >= continuedAt)).toEqual([]);
    expect(log.filter((l) => l.step === "after").map((l) => l.pid)).toEqual([b.pid]);
    expect(details.events.map((e) => [e.kind, e.workerId, e.fence])).toEqual([
      ["created", null, 0],
      ["claimed", a.workerId, 1],
      ["lease-expired", a.workerId, 1],
      ["takeover", b.workerId, 2],
      ["lease-lost", a.workerId, 1],
      ["completed", b.workerId, 2],
    ]);
    expect(details.events[4]!.detail).toMatch(/refused a write with fence 1/);
    expect(details.status).toBe("completed");
    // A is still alive and well: it lost one run, not its mind.
    expect(a.child.exitCode).toBeNull();
    expect(a.child.signalCode).toBeNull();
  });
});
