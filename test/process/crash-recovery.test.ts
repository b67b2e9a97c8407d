/**
 * Crash recovery with real `baton worker` processes and real SIGKILLs, on each backend:
 * the workers share one SQLite file, or one schema of one PostgreSQL server.
 */
import { expect, it } from "vitest";
import { batch } from "../fixtures/workflows.js";
import { describeEachBackend } from "../support/backends.js";
import { processFixture } from "../support/process-fixture.js";
import { readExecLog } from "../support/exec-log.js";
import { waitFor } from "../support/wait-for.js";

describeEachBackend("a worker SIGKILLed mid-step", (backend) => {
  async function setup() {
    const { baton, workers } = await processFixture(backend, [batch]);
    return { baton, workers };
  }

  it("is recovered by another worker after the lease: no completed step runs again, the long step resumes from its progress", async () => {
    const { baton, workers } = await setup();
    const victim = await workers.start();
    const run = await baton.start(batch, { chunks: 6, chunkMs: 150 }, { id: "batch-1" });
    // Kill the victim in the middle of the long step, after it saved some progress.
    await waitFor(
      () => readExecLog(workers.logPath).filter((l) => l.chunk !== undefined).length >= 3,
    );
    victim.child.kill("SIGKILL");
    // The victim may have renewed just before the signal landed. (Event times come from
    // the store's clock; on this one machine it is the test's clock.)
    const killedAt = Date.now() - 50;
    expect(await victim.exited).toBe("SIGKILL");
    const rescuer = await workers.start();

    expect(await run.result({ timeoutMs: 20_000 })).toEqual({
      a: "A",
      b: "B",
      chunks: 6,
      c: "C",
    });
    const log = readExecLog(workers.logPath);
    const startsOf = (step: string) => log.filter((l) => l.step === step && l.chunk === undefined);
    // Completed steps ran exactly once, on the victim.
    expect(startsOf("a").map((l) => l.pid)).toEqual([victim.pid]);
    expect(startsOf("b").map((l) => l.pid)).toEqual([victim.pid]);
    // The step in flight when the victim died ran again, on the rescuer, same attempt.
    expect(startsOf("long").map((l) => l.pid)).toEqual([victim.pid, rescuer.pid]);
    expect(startsOf("long").map((l) => l.attempt)).toEqual([1, 1]);
    expect(startsOf("c").map((l) => l.pid)).toEqual([rescuer.pid]);
    // The rescuer resumed from saved progress: chunks the victim finished were not read again.
    const chunks = log.filter((l) => l.chunk !== undefined);
    const victimChunks = chunks.filter((l) => l.pid === victim.pid).map((l) => l.chunk!);
    const rescuerChunks = chunks.filter((l) => l.pid === rescuer.pid).map((l) => l.chunk!);
    expect(victimChunks.length).toBeGreaterThanOrEqual(3);
    expect(rescuerChunks[0]).toBe(victimChunks.at(-1)); // only the chunk in flight is redone
    expect([...new Set([...victimChunks, ...rescuerChunks])].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    const details = (await baton.get("batch-1"))!;
    expect(details.events.map((e) => e.kind)).toEqual([
      "created",
      "claimed",
      "lease-expired",
      "takeover",
      "completed",
    ]);
    // The victim's lease (1 s, renewed until the kill) expired after the kill; then the
    // rescuer took over with the next fence.
    expect(details.events[2]).toMatchObject({ workerId: victim.workerId, fence: 1 });
    expect(details.events[2]!.at).toBeGreaterThanOrEqual(killedAt);
    expect(details.events[3]).toMatchObject({ workerId: rescuer.workerId, fence: 2 });
    expect(details.steps.map((s) => [s.name, s.workerId, s.fence])).toEqual([
      ["a", victim.workerId, 1],
      ["b", victim.workerId, 1],
      ["long", rescuer.workerId, 2],
      ["c", rescuer.workerId, 2],
    ]);
    expect(details.interruptions).toBe(0);
  });

  it("with several workers killed at once, every run of theirs is resumed by a survivor and no completed step runs again", async () => {
    const { baton, workers } = await setup();
    // Four slots each: the eight runs need both victims.
    const victims = await Promise.all([
      workers.start({ concurrency: 4 }),
      workers.start({ concurrency: 4 }),
    ]);
    const ids = Array.from({ length: 8 }, (_, i) => `many-${i}`);
    const handles = await Promise.all(
      ids.map((id) => baton.start(batch, { chunks: 4, chunkMs: 150 }, { id })),
    );
    // Every run is inside its long step on one of the victims.
    await waitFor(async () => {
      const runs = await Promise.all(ids.map(async (id) => (await baton.get(id))!));
      return runs.every((r) => r.status === "running" && r.steps.length >= 2);
    });
    const owners = new Set(
      (await baton.list({ status: "running", limit: 100 })).map((r) => r.leaseOwner),
    );
    expect(owners).toEqual(new Set(victims.map((v) => v.workerId)));
    for (const v of victims) v.child.kill("SIGKILL");
    expect(await Promise.all(victims.map((v) => v.exited))).toEqual(["SIGKILL", "SIGKILL"]);
    const survivor = await workers.start();

    const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 20_000 })));
    expect(results).toEqual(ids.map(() => ({ a: "A", b: "B", chunks: 4, c: "C" })));
    const log = readExecLog(workers.logPath).filter((l) => l.chunk === undefined);
    const victimPids = victims.map((v) => v.pid);
    for (const id of ids) {
      const starts = (step: string) =>
        log.filter((l) => l.run === id && l.step === step).map((l) => l.pid);
      expect(starts("a")).toHaveLength(1);
      expect(starts("b")).toHaveLength(1);
      expect(victimPids).toContain(starts("a")[0]);
      expect(starts("c")).toEqual([survivor.pid]);
      const details = (await baton.get(id))!;
      expect(details.events.map((e) => e.kind)).toEqual([
        "created",
        "claimed",
        "lease-expired",
        "takeover",
        "completed",
      ]);
      expect(details.events[2]!.workerId).toBe(details.events[1]!.workerId); // a victim's
      expect(details.events[3]!.workerId).toBe(survivor.workerId);
    }
  });
});
