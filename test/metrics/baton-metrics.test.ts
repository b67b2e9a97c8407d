import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { BatonMetrics } from "../../src/metrics/baton-metrics.js";
import type { ShutdownReport } from "../../src/lifecycle/types.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { emptyTally, type DrainTally } from "../../src/worker/shutdown-report.js";
import { tempDir } from "../support/temp-dir.js";

type Labels = Record<string, string | number>;

/** The value of one sample (`metricName` for histogram parts such as `_count`). */
async function sample(
  metrics: BatonMetrics,
  name: string,
  labels: Labels = {},
  metricName = name,
): Promise<number | undefined> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const found = values.find(
    (v) =>
      ((v as { metricName?: string }).metricName ?? name) === metricName &&
      Object.entries(labels).every(([k, want]) => v.labels[k] === want) &&
      Object.keys(v.labels).length === Object.keys(labels).length,
  );
  return found?.value;
}

const count = (m: BatonMetrics, name: string, labels: Labels = {}) =>
  sample(m, name, labels, `${name}_count`);
const sum = (m: BatonMetrics, name: string, labels: Labels = {}) =>
  sample(m, name, labels, `${name}_sum`);
const bucket = (m: BatonMetrics, name: string, le: number, labels: Labels = {}) =>
  sample(m, name, { ...labels, le }, `${name}_bucket`);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function openStore(): SqliteStore {
  const dir = tempDir();
  const store = new SqliteStore({ path: join(dir.path, "baton.db") });
  cleanups.push(() => dir.remove());
  cleanups.push(() => store.close());
  return store;
}

function shutdownReport(overrides: Partial<ShutdownReport> = {}): ShutdownReport {
  const phase = (name: ShutdownReport["phases"][number]["phase"], durationMs: number) => ({
    phase: name,
    startedAt: 0,
    durationMs,
    timedOut: false,
    interrupted: false,
    skipped: false,
    errors: [],
    handlers: [],
  });
  return {
    reason: "SIGTERM",
    startedAt: 0,
    phases: [
      phase("notReady", 2),
      phase("preStop", 0),
      phase("stopIntake", 5),
      phase("drain", 1500),
      phase("finalize", 30),
      phase("close", 12),
    ],
    durationMs: 1549,
    escalated: false,
    watchdog: false,
    exitCode: 0,
    details: {},
    ...overrides,
  };
}

describe("BatonMetrics", () => {
  it("keeps its families on a registry of its own", async () => {
    const metrics = new BatonMetrics();
    const other = new BatonMetrics(); // a second instance must not clash
    expect(metrics.registry).not.toBe(other.registry);
    const text = await metrics.metrics();
    for (const name of [
      "baton_steps_total",
      "baton_step_duration_seconds",
      "baton_checkpoint_duration_seconds",
      "baton_claim_latency_seconds",
      "baton_handoffs_total",
      "baton_recovery_seconds",
      "baton_stale_writes_rejected_total",
      "baton_effects_total",
      "baton_compensations_total",
      "baton_shutdown_duration_seconds",
      "baton_shutdown_phase_duration_seconds",
      "baton_drain_runs_total",
      "baton_worker_inflight_runs",
      "baton_runs",
      "baton_runs_orphaned",
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).not.toContain("process_cpu"); // prom-client's default metrics stay out
    // Closed label sets exist at zero from the start.
    expect(await sample(metrics, "baton_handoffs_total", { reason: "step-deadline" })).toBe(0);
    expect(await count(metrics, "baton_recovery_seconds", { cause: "crash" })).toBe(0);
  });

  it("accepts a registry given to it", () => {
    const registry = new Registry();
    const metrics = new BatonMetrics({ registry });
    expect(metrics.registry).toBe(registry);
    expect(registry.getSingleMetric("baton_steps_total")).toBeDefined();
  });

  it("counts a handoff scenario: steps, the handoff, and the recovery on the next worker", async () => {
    const metrics = new BatonMetrics();
    // Worker A: two steps complete, a shutdown hands the run off at the boundary.
    metrics.stepFinished("research", "completed", 0.2);
    metrics.stepFinished("research", "completed", 0.4);
    await metrics.timeCheckpoint(() => Promise.resolve(true));
    await metrics.timeCheckpoint(() => Promise.resolve(true));
    metrics.handedOff("shutdown");
    metrics.runExecutionFinished("research", "handed-off");
    // Worker B claims it 3 ms after the handoff and its next step starts 12 ms after it.
    const claimed = await metrics.timeClaim(() => Promise.resolve(["run-1"]));
    expect(claimed).toEqual(["run-1"]);
    const handoffAt = 1_000_000;
    const recovery = metrics.startRecovery("handoff", handoffAt);
    recovery.stepStarted(handoffAt + 12);
    recovery.stepStarted(handoffAt + 5_000); // only the first call counts
    metrics.stepFinished("research", "completed", 1.5);
    metrics.runExecutionFinished("research", "completed");

    expect(
      await sample(metrics, "baton_steps_total", { workflow: "research", outcome: "completed" }),
    ).toBe(3);
    expect(await count(metrics, "baton_step_duration_seconds", { workflow: "research" })).toBe(3);
    expect(await sum(metrics, "baton_step_duration_seconds", { workflow: "research" })).toBeCloseTo(
      2.1,
    );
    expect(
      await bucket(metrics, "baton_step_duration_seconds", 0.25, { workflow: "research" }),
    ).toBe(1);
    expect(
      await bucket(metrics, "baton_step_duration_seconds", 0.5, { workflow: "research" }),
    ).toBe(2);
    expect(await count(metrics, "baton_checkpoint_duration_seconds")).toBe(2);
    expect(await count(metrics, "baton_claim_latency_seconds")).toBe(1);
    expect(await sample(metrics, "baton_handoffs_total", { reason: "shutdown" })).toBe(1);
    expect(await sample(metrics, "baton_handoffs_total", { reason: "finalize" })).toBe(0);
    expect(await count(metrics, "baton_recovery_seconds", { cause: "handoff" })).toBe(1);
    expect(await sum(metrics, "baton_recovery_seconds", { cause: "handoff" })).toBeCloseTo(0.012);
    expect(await bucket(metrics, "baton_recovery_seconds", 0.01, { cause: "handoff" })).toBe(0);
    expect(await bucket(metrics, "baton_recovery_seconds", 0.025, { cause: "handoff" })).toBe(1);
    expect(await count(metrics, "baton_recovery_seconds", { cause: "crash" })).toBe(0);
    expect(
      await sample(metrics, "baton_run_executions_total", {
        workflow: "research",
        outcome: "handed-off",
      }),
    ).toBe(1);
    expect(
      await sample(metrics, "baton_run_executions_total", {
        workflow: "research",
        outcome: "completed",
      }),
    ).toBe(1);
  });

  it("counts a crash takeover: the interrupted step, the stale write refused, the recovery", async () => {
    const metrics = new BatonMetrics();
    metrics.registerWorkflows(["research"]);
    expect(
      await sample(metrics, "baton_steps_total", { workflow: "research", outcome: "failed" }),
    ).toBe(0);
    // Worker A stalls past its lease; worker B takes over 10.2 s after the lease expired
    // (lease 10 s + poll) and starts the step again 40 ms later.
    const expiredAt = 5_000_000;
    metrics.startRecovery("crash", expiredAt).stepStarted(expiredAt + 10_240);
    // A wakes up: its step ends, interrupted, and its write is refused by the fence.
    metrics.stepFinished("research", "interrupted", 12);
    metrics.staleWriteRejected();
    metrics.runExecutionFinished("research", "lease-lost");
    metrics.stepFinished("research", "retrying", 0.1);
    metrics.stepFinished("research", "completed", 0.3);

    expect(await count(metrics, "baton_recovery_seconds", { cause: "crash" })).toBe(1);
    expect(await sum(metrics, "baton_recovery_seconds", { cause: "crash" })).toBeCloseTo(10.24);
    expect(await bucket(metrics, "baton_recovery_seconds", 10, { cause: "crash" })).toBe(0);
    expect(await bucket(metrics, "baton_recovery_seconds", 15, { cause: "crash" })).toBe(1);
    expect(await sample(metrics, "baton_stale_writes_rejected_total")).toBe(1);
    for (const [outcome, n] of [
      ["interrupted", 1],
      ["retrying", 1],
      ["completed", 1],
      ["failed", 0],
    ] as const)
      expect(await sample(metrics, "baton_steps_total", { workflow: "research", outcome })).toBe(n);
    expect(
      await sample(metrics, "baton_run_executions_total", {
        workflow: "research",
        outcome: "lease-lost",
      }),
    ).toBe(1);
  });

  it("counts a compensation: effects by resolution, compensations registered and run", async () => {
    const metrics = new BatonMetrics();
    metrics.effectResolved("executed"); // charge
    metrics.compensationRegistered();
    metrics.effectResolved("executed"); // reserve
    metrics.compensationRegistered();
    // A crash between intent and result of the third effect; the new owner checks it.
    metrics.effectResolved("checked-done");
    metrics.compensationRegistered();
    metrics.effectResolved("replayed");
    metrics.effectResolved("replayed");
    // The run cannot go on: its three compensations run, one fails once then succeeds.
    metrics.compensationFinished("completed");
    metrics.compensationFinished("failed");
    metrics.compensationFinished("completed");
    metrics.compensationFinished("completed");

    expect(await sample(metrics, "baton_effects_total", { resolution: "executed" })).toBe(2);
    expect(await sample(metrics, "baton_effects_total", { resolution: "checked-done" })).toBe(1);
    expect(await sample(metrics, "baton_effects_total", { resolution: "replayed" })).toBe(2);
    expect(await sample(metrics, "baton_effects_total", { resolution: "rerun-unchecked" })).toBe(0);
    expect(await sample(metrics, "baton_compensations_registered_total")).toBe(3);
    expect(await sample(metrics, "baton_compensations_total", { outcome: "completed" })).toBe(3);
    expect(await sample(metrics, "baton_compensations_total", { outcome: "failed" })).toBe(1);
  });

  it("records a shutdown: total and phase durations, its outcome, the drain tally", async () => {
    const metrics = new BatonMetrics();
    const runs: DrainTally = {
      ...emptyTally(),
      inFlight: 6,
      completed: 1,
      handedOff: 3,
      toCompensate: 1,
      failedToCheckpoint: 1,
    };
    metrics.shutdownFinished({
      ...shutdownReport({ exitCode: 1 }),
      workerId: "w1",
      runs,
    } as ShutdownReport & {
      runs: DrainTally;
    });
    const skippedPreStop = shutdownReport({ escalated: true, durationMs: 800 });
    metrics.shutdownFinished({
      ...skippedPreStop,
      phases: skippedPreStop.phases.map((p) =>
        p.phase === "drain" ? { ...p, skipped: true, durationMs: 0 } : p,
      ),
    });

    expect(await count(metrics, "baton_shutdown_duration_seconds")).toBe(2);
    expect(await sum(metrics, "baton_shutdown_duration_seconds")).toBeCloseTo(2.349);
    expect(await count(metrics, "baton_shutdown_phase_duration_seconds", { phase: "drain" })).toBe(
      1,
    );
    expect(
      await sum(metrics, "baton_shutdown_phase_duration_seconds", { phase: "drain" }),
    ).toBeCloseTo(1.5);
    expect(
      await count(metrics, "baton_shutdown_phase_duration_seconds", { phase: "finalize" }),
    ).toBe(2);
    expect(await sample(metrics, "baton_shutdowns_total", { outcome: "unclean" })).toBe(1);
    expect(await sample(metrics, "baton_shutdowns_total", { outcome: "escalated" })).toBe(1);
    expect(await sample(metrics, "baton_shutdowns_total", { outcome: "clean" })).toBe(0);
    expect(await sample(metrics, "baton_drain_runs_total", { outcome: "handed-off" })).toBe(3);
    expect(await sample(metrics, "baton_drain_runs_total", { outcome: "completed" })).toBe(1);
    expect(
      await sample(metrics, "baton_drain_runs_total", { outcome: "failed-to-checkpoint" }),
    ).toBe(1);
    expect(await sample(metrics, "baton_drain_runs_total", { outcome: "to-compensate" })).toBe(1);
    expect(await sample(metrics, "baton_drain_runs_total", { outcome: "lease-lost" })).toBe(0);
  });

  it("sums in-flight runs over its sources at scrape time", async () => {
    const metrics = new BatonMetrics();
    let a = 3;
    const removeA = metrics.observeInflight(() => a);
    metrics.observeInflight(() => 2);
    expect(await sample(metrics, "baton_worker_inflight_runs")).toBe(5);
    a = 1;
    expect(await sample(metrics, "baton_worker_inflight_runs")).toBe(3);
    removeA();
    expect(await sample(metrics, "baton_worker_inflight_runs")).toBe(2);
  });

  it("reads runs by status and orphaned runs from the store at scrape time", async () => {
    const store = openStore();
    const metrics = new BatonMetrics({ store });
    for (let i = 0; i < 6; i++)
      await store.createRun({
        id: `run-${i}`,
        workflow: "research",
        version: 1,
        input: null,
        priority: 0,
      });
    // Two runs claimed with a lease that expires at once (a crashed worker), two with a long one.
    const alive = await store.claimRuns("alive", ["research"], 2, 60_000);
    const crashed = await store.claimRuns("crashed", ["research"], 2, 1);
    await store.completeRun(
      { runId: alive[0]!.id, fence: alive[0]!.fence, workerId: "alive" },
      "1",
    );
    await new Promise((r) => setTimeout(r, 5));

    expect(crashed).toHaveLength(2);
    expect(await sample(metrics, "baton_runs", { status: "queued" })).toBe(2);
    expect(await sample(metrics, "baton_runs", { status: "running" })).toBe(3);
    expect(await sample(metrics, "baton_runs", { status: "completed" })).toBe(1);
    expect(await sample(metrics, "baton_runs", { status: "compensating" })).toBe(0);
    expect(await sample(metrics, "baton_runs_orphaned")).toBe(2);

    // Taken over: no longer orphaned.
    await store.claimRuns("rescuer", ["research"], 1, 60_000);
    expect(await sample(metrics, "baton_runs_orphaned")).toBe(1);
  });

  it("drops the store gauges, and keeps answering, when the store cannot be read", async () => {
    const store = openStore();
    const metrics = new BatonMetrics();
    metrics.observeStore(store);
    expect(await sample(metrics, "baton_runs", { status: "queued" })).toBe(0);
    await store.close();
    const text = await metrics.metrics();
    expect(text).not.toMatch(/^baton_runs\{/m);
    expect(text).toMatch(/^baton_runs_orphaned nan$/im);
    expect(text).toMatch(/^baton_metrics_store_errors_total 1$/m);
  });
});
