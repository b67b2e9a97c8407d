import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Baton } from "../../src/index.js";
import { batch } from "../fixtures/workflows.js";
import { readExecLog } from "../support/exec-log.js";
import { tempDir } from "../support/temp-dir.js";
import { waitFor } from "../support/wait-for.js";
import { workerProcesses } from "../support/worker-processes.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("a worker SIGKILLed mid-step", () => {
  it("is recovered by another worker after the lease: no completed step runs again, the long step resumes from its progress", async () => {
    const dir = tempDir();
    const store = `sqlite:${join(dir.path, "baton.db")}`;
    const baton = await Baton.open({ store, workflows: [batch] });
    const workers = workerProcesses(store, dir.path);
    cleanups.push(
      () => dir.remove(),
      () => baton.close(),
      () => workers.killAll(),
    );

    const victim = await workers.start();
    const run = await baton.start(batch, { chunks: 6, chunkMs: 150 }, { id: "batch-1" });
    // Kill the victim in the middle of the long step, after it saved some progress.
    await waitFor(
      () => readExecLog(workers.logPath).filter((l) => l.chunk !== undefined).length >= 3,
    );
    victim.child.kill("SIGKILL");
    const killedAt = Date.now() - 50; // the victim may have renewed just before the signal landed
    expect(await victim.exited).toBe("SIGKILL");
    const rescuer = await workers.start();

    expect(await run.result({ timeoutMs: 20_000 })).toEqual({ a: "A", b: "B", chunks: 6, c: "C" });
    const log = readExecLog(workers.logPath);
    const startsOf = (step: string) => log.filter((l) => l.step === step && l.chunk === undefined);
    // Completed steps ran exactly once, on the victim.
    expect(startsOf("a").map((l) => l.pid)).toEqual([victim.pid]);
    expect(startsOf("b").map((l) => l.pid)).toEqual([victim.pid]);
    // The step in flight when the victim died ran again, on the rescuer.
    expect(startsOf("long").map((l) => l.pid)).toEqual([victim.pid, rescuer.pid]);
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
    // The victim's lease (1 s, renewed until the kill) expired after the kill; then the rescuer took over.
    expect(details.events[2]).toMatchObject({ workerId: victim.workerId, fence: 1 });
    expect(details.events[2]!.at).toBeGreaterThanOrEqual(killedAt);
    expect(details.events[3]!.workerId).toBe(rescuer.workerId);
    expect(details.interruptions).toBe(0);
  });
});
