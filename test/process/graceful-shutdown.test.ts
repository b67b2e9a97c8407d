/**
 * Graceful shutdown with real `baton worker` processes and real signals, on each backend:
 * the workers share one SQLite file, or one schema of one PostgreSQL server.
 *
 * The worker that takes over is started once the stopped one has exited. Booting one
 * takes 0.5–2 s of a loaded machine's CPU: earlier, it could claim runs meant for the
 * first worker, let short runs finish before the signal, or slow the first worker's drain
 * past its step deadline. A run handed off meanwhile waits, queued, for it.
 */
import { expect, it } from "vitest";
import { type RunDetails } from "../../src/index.js";
import type { WorkerProcess } from "../../src/demo/worker-process.js";
import { drainer, patient, steps, stubborn, undoOnStop } from "../fixtures/workflows.js";
import { describeEachBackend } from "../support/backends.js";
import { processFixture } from "../support/process-fixture.js";
import { readExecLog } from "../support/exec-log.js";
import { waitFor } from "../support/wait-for.js";

// graceMs 8000 leaves a drain phase of 1.9 s with the default phase budgets; the step
// deadline falls 380 ms before its end.
const GRACE_MS = 8_000;

/** Sends `signal` and resolves with the exit code and how long the exit took. */
async function terminate(worker: WorkerProcess, signal: NodeJS.Signals = "SIGTERM") {
  const sentAt = Date.now();
  worker.child.kill(signal);
  const code = await worker.exited;
  return { code, tookMs: Date.now() - sentAt, sentAt };
}

const kinds = (run: RunDetails) => run.events.map((e) => e.kind);

function expectNoStepRanTwice(log: ReturnType<typeof readExecLog>) {
  const starts = log.filter((l) => l.chunk === undefined).map((l) => `${l.run}/${l.step}`);
  expect(starts.length).toBe(new Set(starts).size);
}

describeEachBackend("graceful shutdown of a worker process", (backend) => {
  async function setup() {
    const { baton, workers } = await processFixture(backend, [
      steps,
      drainer,
      patient,
      stubborn,
      undoOnStop,
    ]);
    const start = () => workers.start({ graceMs: GRACE_MS, leaseMs: 2_000, concurrency: 20 });
    /** SIGTERMs `a` and, once it has exited, starts the worker that takes over. */
    const handOver = async (a: WorkerProcess) => {
      const exit = await terminate(a);
      return { ...exit, b: await start() };
    };
    /** `a`'s shutdown report, as the message of an exit code check (it says what failed). */
    const shutdownReportOf = async (a: WorkerProcess) =>
      (await baton.store.latestShutdownReport(a.workerId))?.report ?? "no shutdown report";
    const all = async () =>
      Promise.all((await baton.list({ limit: 1000 })).map(async (r) => (await baton.get(r.id))!));
    /** The premise of a test: every run is in flight on `a` when it is stopped. */
    const expectAllRunningOn = async (a: WorkerProcess) => {
      const runs = await baton.list({ limit: 1000 });
      expect(runs.map((r) => [r.id, r.status, r.leaseOwner])).toEqual(
        runs.map((r) => [r.id, "running", a.workerId]),
      );
    };
    return {
      baton,
      start,
      handOver,
      shutdownReportOf,
      all,
      expectAllRunningOn,
      log: () => readExecLog(workers.logPath),
    };
  }

  it("checkpoint mode: SIGTERM hands every run off at a step boundary, another worker resumes it, exit 0 within the budget", async () => {
    const { baton, start, handOver, all, expectAllRunningOn, shutdownReportOf, log } =
      await setup();
    const a = await start();
    for (let i = 0; i < 6; i++)
      await baton.start(steps, { steps: 12, stepMs: 150 }, { id: `cp-${i}` });
    await waitFor(async () => (await all()).every((r) => r.steps.length >= 1));
    await expectAllRunningOn(a);
    const { b, code, tookMs, sentAt } = await handOver(a);
    expect(code, await shutdownReportOf(a)).toBe(0);
    expect(tookMs).toBeLessThan(GRACE_MS);
    // No run is left running under the stopped worker.
    expect(
      (await baton.list({ status: "running" })).filter((r) => r.leaseOwner === a.workerId),
    ).toEqual([]);
    // Claims stopped at once: a run started now goes to the other worker.
    const late = await baton.start(steps, { steps: 1, stepMs: 1 }, { id: "late" });
    await late.result({ timeoutMs: 10_000 });
    await waitFor(async () => (await all()).every((r) => r.status === "completed"), 15_000);
    const runs = await all();
    expect(runs).toHaveLength(7);
    for (const run of runs) {
      expect(run.status).toBe("completed");
      expect(
        run.events.some((e) => e.kind === "claimed" && e.workerId === a.workerId && e.at > sentAt),
      ).toBe(false);
      expect(run.steps.every((s) => s.attempts === 1)).toBe(true); // interruptions are not attempts
    }
    for (const run of runs.filter((r) => r.id !== "late")) {
      expect(run.interruptions).toBe(1);
      expect(kinds(run)).toEqual(["created", "claimed", "handoff", "claimed", "completed"]);
      expect(run.events[3]!.workerId).toBe(b.workerId);
      // Steps before the handoff are A's, steps after it B's, each once.
      const owners = run.steps.map((s) => s.workerId);
      const firstOnB = owners.indexOf(b.workerId);
      expect(firstOnB).toBeGreaterThan(0);
      expect(owners.slice(0, firstOnB).every((w) => w === a.workerId)).toBe(true);
      expect(owners.slice(firstOnB).every((w) => w === b.workerId)).toBe(true);
    }
    expectNoStepRanTwice(log());
    const report = JSON.parse((await baton.store.latestShutdownReport(a.workerId))!.report) as {
      runs: { inFlight: number; handedOff: number; failedToCheckpoint: number };
      exitCode: number;
    };
    expect(report.runs).toMatchObject({ inFlight: 6, handedOff: 6, failedToCheckpoint: 0 });
    expect(report.exitCode).toBe(0);
    expect((await baton.store.listWorkers()).find((w) => w.id === a.workerId)?.state).toBe(
      "stopped",
    );
  });

  it("drain mode: runs that fit finish on the stopping worker; one that cannot is handed off before the deadline", async () => {
    const { baton, start, handOver, all, expectAllRunningOn, shutdownReportOf, log } =
      await setup();
    const a = await start();
    await baton.start(drainer, { steps: 3, stepMs: 150 }, { id: "short-1" });
    await baton.start(drainer, { steps: 3, stepMs: 150 }, { id: "short-2" });
    await baton.start(drainer, { steps: 30, stepMs: 150 }, { id: "long" });
    await waitFor(async () => (await all()).every((r) => r.steps.length >= 1));
    await expectAllRunningOn(a);
    const { code } = await handOver(a);
    expect(code, await shutdownReportOf(a)).toBe(0);
    await (
      await baton.start(drainer, { steps: 0, stepMs: 0 }, { id: "probe" })
    ).result({ timeoutMs: 10_000 });
    await waitFor(async () => (await baton.get("long"))!.status === "completed", 15_000);
    const byId = Object.fromEntries((await all()).map((r) => [r.id, r]));
    for (const id of ["short-1", "short-2"]) {
      expect(kinds(byId[id]!)).toEqual(["created", "claimed", "completed"]);
      expect(byId[id]!.events[1]!.workerId).toBe(a.workerId);
    }
    const long = byId.long!;
    expect(kinds(long)).toEqual(["created", "claimed", "handoff", "claimed", "completed"]);
    // It kept going during the drain: more steps than the two done before SIGTERM ran on A.
    const onA = long.steps.filter((s) => s.workerId === a.workerId).length;
    expect(onA).toBeGreaterThan(3);
    expect(onA).toBeLessThan(30);
    expect(long.interruptions).toBe(1);
    expectNoStepRanTwice(log());
  });

  it("compensate mode: SIGTERM marks the run for compensation; another worker undoes it, exit 0", async () => {
    const { baton, start, expectAllRunningOn, shutdownReportOf, log } = await setup();
    const a = await start();
    const run = await baton.start(undoOnStop, { steps: 40, stepMs: 100 }, { id: "undo" });
    await waitFor(() => log().filter((l) => l.run === "undo").length >= 3);
    await expectAllRunningOn(a);
    const { code } = await terminate(a);
    expect(code, await shutdownReportOf(a)).toBe(0);
    // Started only after A's exit, so the run is seen waiting, unowned, for compensation.
    expect((await run.status()).status).toBe("compensating");
    const b = await start();
    await waitFor(async () => (await run.status()).status === "compensated", 15_000);
    const undone = log().filter((l) => l.step === "compensate:open-account");
    expect(undone.map((l) => l.pid)).toEqual([b.pid]);
    // Nothing went forward after the signal: the last step A ran was the one in flight.
    expect(log().filter((l) => l.pid === b.pid && l.step.startsWith("work-"))).toEqual([]);
    expect(kinds((await baton.get("undo"))!)).toEqual([
      "created",
      "claimed",
      "compensating",
      "claimed",
      "compensated",
    ]);
  });

  it("a long step sees its signal abort at the step deadline, saves progress, and resumes elsewhere without losing an attempt", async () => {
    const { baton, start, handOver, expectAllRunningOn, shutdownReportOf, log } = await setup();
    const a = await start();
    const run = await baton.start(patient, { chunks: 40, chunkMs: 100 }, { id: "patient" });
    await waitFor(() => log().filter((l) => l.chunk !== undefined).length >= 3);
    await expectAllRunningOn(a);
    const { b, code } = await handOver(a);
    expect(code, await shutdownReportOf(a)).toBe(0);
    expect(await run.result({ timeoutMs: 20_000 })).toEqual({ chunks: 40, attempt: 1 });
    const chunks = log().filter((l) => l.chunk !== undefined);
    const onA = chunks.filter((l) => l.pid === a.pid).map((l) => l.chunk!);
    const onB = chunks.filter((l) => l.pid === b.pid).map((l) => l.chunk!);
    // A worked until the step deadline (well past the SIGTERM), B picked up where it stopped.
    expect(onA.length).toBeGreaterThan(5);
    expect(onB[0]).toBe(onA.length);
    expect([...onA, ...onB]).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const details = (await baton.get("patient"))!;
    expect(details.steps[0]).toMatchObject({ status: "completed", attempts: 1 });
    expect(details.interruptions).toBe(1);
    expect(kinds(details)).toEqual(["created", "claimed", "handoff", "claimed", "completed"]);
  });

  it("a step that ignores its abort: the worker still exits before the grace period, code 1, the run released and resumed", async () => {
    const { baton, start, handOver, expectAllRunningOn } = await setup();
    const a = await start();
    await baton.start(stubborn, { ms: 60_000 }, { id: "stubborn" });
    await waitFor(async () => (await baton.get("stubborn"))!.status === "running");
    await new Promise((r) => setTimeout(r, 100));
    await expectAllRunningOn(a);
    const { b, code, tookMs } = await handOver(a);
    expect(code).toBe(1);
    expect(tookMs).toBeLessThan(GRACE_MS);
    await waitFor(async () =>
      (await baton.get("stubborn"))!.events.some(
        (e) => e.kind === "claimed" && e.workerId === b.workerId,
      ),
    );
    const report = JSON.parse((await baton.store.latestShutdownReport(a.workerId))!.report) as {
      runs: { failedToCheckpoint: number };
      exitCode: number;
    };
    expect(report.runs.failedToCheckpoint).toBe(1);
    expect(report.exitCode).toBe(1);
  });

  it("a second SIGTERM skips to finalize", async () => {
    const { baton, start } = await setup();
    const a = await start();
    await baton.start(stubborn, { ms: 60_000 }, { id: "stubborn" });
    await waitFor(async () => (await baton.get("stubborn"))!.status === "running");
    a.child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    const { code, tookMs } = await terminate(a);
    expect(code).toBe(1);
    // Well before the drain deadline (about 6 s after the first signal).
    expect(tookMs).toBeLessThan(3_000);
    expect((await baton.get("stubborn"))!.status).toBe("queued");
  });

  it("POST /drain shuts down like SIGTERM; /readyz answers 503 from the start of shutdown", async () => {
    const { baton, start, all } = await setup();
    const a = await start();
    const url = (path: string) => `http://127.0.0.1:${a.httpPort}${path}`;
    expect((await fetch(url("/readyz"))).status).toBe(200);
    for (let i = 0; i < 3; i++)
      await baton.start(steps, { steps: 12, stepMs: 150 }, { id: `d-${i}` });
    await waitFor(async () => (await all()).every((r) => r.steps.length >= 1));
    expect((await fetch(url("/drain"), { method: "POST" })).status).toBe(202);
    expect((await fetch(url("/readyz"))).status).toBe(503);
    expect((await fetch(url("/drain"), { method: "POST" })).status).toBe(202); // idempotent
    expect(await a.exited).toBe(0);
    await start();
    await waitFor(async () => (await all()).every((r) => r.status === "completed"), 15_000);
    for (const run of await all()) expect(kinds(run)).toContain("handoff");
  });

  it("SIGTERM: /readyz turns 503 while the worker drains, and never back", async () => {
    const { baton, start } = await setup();
    const a = await start();
    await baton.start(steps, { steps: 2, stepMs: 600 }, { id: "busy" });
    await waitFor(async () => (await baton.get("busy"))!.status === "running");
    const answers: number[] = [];
    a.child.kill("SIGTERM");
    // Poll until the server is gone. (POST /drain above shows 503 from the first request
    // after shutdown began; a signal races the first request, so it is not timed here.)
    for (let i = 0; i < 500; i++) {
      const ready = await fetch(`http://127.0.0.1:${a.httpPort}/readyz`).catch(() => undefined);
      if (!ready) break;
      answers.push(ready.status);
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(await a.exited).toBe(0);
    const firstNotReady = answers.indexOf(503);
    expect(firstNotReady).toBeGreaterThanOrEqual(0);
    expect(answers.slice(firstNotReady).every((status) => status === 503)).toBe(true);
  });
});
