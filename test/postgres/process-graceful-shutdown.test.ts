/**
 * Graceful shutdown on PostgreSQL with real `baton worker` processes and real signals:
 * the assertions of test/process/graceful-shutdown.test.ts, with the workers sharing one
 * schema of one server (the handoff wakes the other worker with NOTIFY).
 */
import { afterEach, describe, expect, it } from "vitest";
import { Baton, type RunDetails } from "../../src/index.js";
import type { WorkerProcess } from "../../src/demo/worker-process.js";
import { drainer, patient, steps, stubborn } from "../fixtures/workflows.js";
import { readExecLog } from "../support/exec-log.js";
import { usePostgres } from "../support/postgres.js";
import { tempDir } from "../support/temp-dir.js";
import { waitFor } from "../support/wait-for.js";
import { workerProcesses } from "../support/worker-processes.js";

// graceMs 8000 leaves a drain phase of 1.9 s with the default phase budgets; the step
// deadline falls 380 ms before its end.
const GRACE_MS = 8_000;

const postgres = usePostgres();

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  const dir = tempDir();
  const schema = await postgres.schema();
  const baton = await Baton.open({
    store: schema.url,
    workflows: [steps, drainer, patient, stubborn],
  });
  const workers = workerProcesses(schema.url, dir.path);
  cleanups.push(
    () => dir.remove(),
    () => schema.drop(),
    () => baton.close(),
    () => workers.killAll(),
  );
  const start = () => workers.start({ graceMs: GRACE_MS, leaseMs: 2_000, concurrency: 20 });
  const all = async () =>
    Promise.all((await baton.list({ limit: 1000 })).map(async (r) => (await baton.get(r.id))!));
  /**
   * The worker that takes over, booted before the runs are queued and frozen (SIGSTOP) so
   * it claims none of them; `thaw` continues it just before the first worker is stopped.
   * Booting it after the first steps instead (as the SQLite file does) takes 0.5–2 s on a
   * loaded machine, long enough for short runs to finish before the SIGTERM.
   */
  const startFrozen = async () => {
    const worker = await start();
    worker.child.kill("SIGSTOP");
    return { worker, thaw: () => void worker.child.kill("SIGCONT") };
  };
  /** The premise of each test: every run is in flight on `a` when it is stopped. */
  const expectAllRunningOn = async (a: WorkerProcess) => {
    const runs = await baton.list({ limit: 1000 });
    expect(runs.map((r) => [r.id, r.status, r.leaseOwner])).toEqual(
      runs.map((r) => [r.id, "running", a.workerId]),
    );
  };
  return {
    baton,
    start,
    startFrozen,
    expectAllRunningOn,
    all,
    log: () => readExecLog(workers.logPath),
  };
}

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

describe("graceful shutdown of a worker process on postgres", () => {
  it("checkpoint mode: SIGTERM hands every run off at a step boundary, another worker resumes it, exit 0 within the budget", async () => {
    const { baton, start, startFrozen, expectAllRunningOn, all, log } = await setup();
    const a = await start();
    const { worker: b, thaw } = await startFrozen();
    for (let i = 0; i < 6; i++)
      await baton.start(steps, { steps: 12, stepMs: 150 }, { id: `cp-${i}` });
    await waitFor(async () => (await all()).every((r) => r.steps.length >= 1));
    await expectAllRunningOn(a);
    thaw();
    const { code, tookMs, sentAt } = await terminate(a);
    expect(code).toBe(0);
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
    const { baton, start, startFrozen, expectAllRunningOn, all, log } = await setup();
    const a = await start();
    const { thaw } = await startFrozen();
    await baton.start(drainer, { steps: 3, stepMs: 150 }, { id: "short-1" });
    await baton.start(drainer, { steps: 3, stepMs: 150 }, { id: "short-2" });
    await baton.start(drainer, { steps: 30, stepMs: 150 }, { id: "long" });
    await waitFor(async () => (await all()).every((r) => r.steps.length >= 1));
    await expectAllRunningOn(a);
    thaw();
    const { code } = await terminate(a);
    expect(code).toBe(0);
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

  it("a long step sees its signal abort at the step deadline, saves progress, and resumes elsewhere without losing an attempt", async () => {
    const { baton, start, startFrozen, expectAllRunningOn, log } = await setup();
    const a = await start();
    const { worker: b, thaw } = await startFrozen();
    const run = await baton.start(patient, { chunks: 40, chunkMs: 100 }, { id: "patient" });
    await waitFor(() => log().filter((l) => l.chunk !== undefined).length >= 3);
    await expectAllRunningOn(a);
    thaw();
    const { code } = await terminate(a);
    expect(code).toBe(0);
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
    const { baton, start, startFrozen, expectAllRunningOn } = await setup();
    const a = await start();
    const { worker: b, thaw } = await startFrozen();
    await baton.start(stubborn, { ms: 60_000 }, { id: "stubborn" });
    await waitFor(async () => (await baton.get("stubborn"))!.status === "running");
    await new Promise((r) => setTimeout(r, 100));
    await expectAllRunningOn(a);
    thaw();
    const { code, tookMs } = await terminate(a);
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
});
