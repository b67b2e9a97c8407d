/**
 * Split brain with real `baton worker` processes, on each backend: the workers share one
 * SQLite file, or one schema of one PostgreSQL server.
 *
 * What the fence prevents is shown with fencing switched off at the store, in
 * test/store/fencing.test.ts. Only the SQLite store can switch it off (`fencing: false`,
 * set by `BATON_UNSAFE_DISABLE_FENCING=1`); the Postgres store's fence checks are part of
 * its statements.
 */
import { expect, it } from "vitest";
import { slow } from "../fixtures/workflows.js";
import { describeEachBackend } from "../support/backends.js";
import { processFixture } from "../support/process-fixture.js";
import { readExecLog } from "../support/exec-log.js";
import { waitFor } from "../support/wait-for.js";

describeEachBackend("split brain: a worker stopped past its lease, then continued", (backend) => {
  /**
   * Worker A starts a 400 ms step and is SIGSTOPped inside it, past its 1.5 s lease (its
   * store connections stay open but silent). Worker B takes the run over (fence 2). A is
   * SIGCONTed while B is inside the same step: A's step ends by saving progress, a write
   * it makes whether or not its heartbeat has noticed the loss yet (its step timer is due
   * before its next heartbeat). The fence must refuse it.
   */
  it("has its stale write refused by the fence, aborts locally, starts no further step; the new owner finishes once", async () => {
    const { baton, workers } = await processFixture(backend, [slow]);

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
