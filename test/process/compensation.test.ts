/**
 * Compensation under a real SIGKILL, on each backend: the workers share one SQLite file,
 * or one schema of one PostgreSQL server.
 */
import { expect, it } from "vitest";
import { TerminalError } from "../../src/index.js";
import { saga } from "../fixtures/workflows.js";
import { describeEachBackend } from "../support/backends.js";
import { processFixture } from "../support/process-fixture.js";
import { readExecLog } from "../support/exec-log.js";

describeEachBackend("compensation under SIGKILL", (backend) => {
  it("a worker killed after its first compensation: the next one runs the rest, none twice, in reverse order", async () => {
    const { baton, workers } = await processFixture(backend, [saga]);

    const a = await workers.start({
      leaseMs: 600,
      env: { BATON_FAULT_INJECT: "compensation:after-result" },
    });
    const run = await baton.start(saga, null, { id: "trip" });
    expect(await a.exited).toBe("SIGKILL");
    expect((await run.status()).status).toBe("compensating");
    const b = await workers.start({ leaseMs: 600 });
    const error = await run.result({ timeoutMs: 15_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TerminalError);
    expect((error as Error).message).toBe("card declined");

    const log = readExecLog(workers.logPath);
    expect(log.map((l) => [l.step, l.pid])).toEqual([
      ["book-flight", a.pid],
      ["book-hotel", a.pid],
      ["book-car", a.pid],
      ["pay", a.pid],
      ["compensate:book-car", a.pid],
      ["compensate:book-hotel", b.pid],
      ["compensate:book-flight", b.pid],
    ]);
    const details = (await baton.get("trip"))!;
    expect(details.status).toBe("compensated");
    expect(details.events.map((e) => e.kind)).toEqual([
      "created",
      "claimed",
      "compensating",
      "lease-expired",
      "takeover",
      "compensated",
    ]);
    expect(
      details.steps.filter((s) => s.kind === "compensation").every((s) => s.attempts === 1),
    ).toBe(true);
  });
});
