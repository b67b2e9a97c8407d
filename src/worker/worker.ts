import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { ClaimedRun, Store } from "../store/store.js";
import { LeaseLostError } from "../workflow/errors.js";
import type { Workflow } from "../workflow/types.js";
import { ActiveRun } from "./active-run.js";
import { LeaseKeeper } from "./lease-keeper.js";
import { executeRun, type RunOutcome } from "./run-executor.js";
import { Wakeup } from "./wakeup.js";
import {
  resolveWorkerOptions,
  type ResolvedWorkerOptions,
  type WorkerOptions,
} from "./worker-options.js";
import { installStopSignals } from "./stop-signals.js";

/**
 * A worker's lifecycle:
 * - `idle`: made, not started; claims nothing.
 * - `running`: registered in the store, heartbeating, claiming up to `concurrency` runs.
 * - `draining`: stopping; claims nothing, hands each run off at its next step boundary.
 * - `stopped`: every run finished or handed off, leases released, row marked stopped.
 */
export type WorkerLifecycleState = "idle" | "running" | "draining" | "stopped";

/** What a graceful stop did. */
export type ShutdownReport = {
  workerId: string;
  reason: string;
  startedAt: number;
  durationMs: number;
  /** Runs in flight when the stop began. */
  inFlight: number;
  completed: number;
  handedOff: number;
  failed: number;
  sleeping: number;
  leaseLost: number;
};

export type WorkerDeps = {
  store: Store;
  workflows: ReadonlyMap<string, Workflow>;
  log: Logger;
  maxPayloadBytes: number;
  /** Called when the worker starts and stops, so `Baton` can wake it on local starts. */
  onState?: (worker: Worker, state: WorkerLifecycleState) => void;
};

/**
 * Claims runs and executes them, up to `concurrency` at a time. Reading order: `start`
 * → `claimLoop` → `launch` → `executeRun` → `settle`; `stop` drains.
 */
export class Worker {
  readonly id: string;
  readonly options: ResolvedWorkerOptions;
  private lifecycle: WorkerLifecycleState = "idle";
  private readonly runs = new Map<string, ActiveRun>();
  private readonly executions = new Set<Promise<void>>();
  private readonly wakeup = new Wakeup();
  private readonly leases: LeaseKeeper;
  private readonly log: Logger;
  private loop: Promise<void> | undefined;
  private stopping: Promise<ShutdownReport> | undefined;
  private unsubscribeWake: (() => void) | undefined;
  private removeSignals: (() => void) | undefined;
  private drainTally:
    | Omit<ShutdownReport, "workerId" | "reason" | "startedAt" | "durationMs" | "inFlight">
    | undefined;

  constructor(
    private readonly deps: WorkerDeps,
    options: WorkerOptions = {},
  ) {
    this.options = resolveWorkerOptions(options);
    this.id = this.options.id ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.log = deps.log.child({ workerId: this.id });
    this.leases = new LeaseKeeper(
      deps.store,
      this.id,
      this.options.leaseMs,
      this.options.heartbeatMs,
      this.runs,
      this.log,
    );
  }

  get state(): WorkerLifecycleState {
    return this.lifecycle;
  }

  /** Runs executing on this worker now. */
  get inFlight(): number {
    return this.runs.size;
  }

  /** Registers the worker and starts claiming. Handles SIGTERM/SIGINT unless `handleSignals: false`. */
  async start(): Promise<void> {
    if (this.lifecycle !== "idle") throw new Error(`worker ${this.id} was already started`);
    this.lifecycle = "running";
    const { store } = this.deps;
    await store.registerWorker({
      id: this.id,
      state: "running",
      host: hostname(),
      pid: process.pid,
      concurrency: this.options.concurrency,
    });
    await store.registerWorkflows(
      [...this.deps.workflows.values()].map(({ name, version }) => ({ name, version })),
    );
    this.leases.start();
    this.unsubscribeWake = store.onWake(() => this.wakeup.notify());
    if (this.options.handleSignals) this.removeSignals = installStopSignals(this, this.log);
    this.deps.onState?.(this, "running");
    this.loop = this.claimLoop();
    this.log.info(
      { concurrency: this.options.concurrency, workflows: [...this.deps.workflows.keys()] },
      "worker started",
    );
  }

  /** Asks the claim loop to look for work now (a run was started in this process). */
  wake(): void {
    this.wakeup.notify();
  }

  /**
   * Graceful stop: claim nothing more, hand each run off at its next step boundary (a
   * step in flight finishes first), release leases, mark the worker stopped. Idempotent:
   * every call returns the same promise.
   */
  stop(reason = "stop() called"): Promise<ShutdownReport> {
    this.stopping ??= this.drain(reason);
    return this.stopping;
  }

  private async claimLoop(): Promise<void> {
    const { store, workflows } = this.deps;
    const names = [...workflows.keys()];
    while (this.lifecycle === "running") {
      const free = this.options.concurrency - this.runs.size;
      if (free > 0) {
        const claimStartedAt = Date.now();
        try {
          const claimed = await store.claimRuns(this.id, names, free, this.options.leaseMs);
          for (const run of claimed) this.launch(run, claimStartedAt);
          if (claimed.length > 0 && claimed.length === free) continue;
        } catch (error) {
          this.log.error({ err: error }, "claim failed; retrying after the poll interval");
        }
      }
      await this.wakeup.wait(this.options.pollMs);
    }
  }

  private launch(run: ClaimedRun, claimStartedAt: number): void {
    const workflow = this.deps.workflows.get(run.workflow);
    const lease = { runId: run.id, fence: run.fence, workerId: this.id };
    const active = new ActiveRun(lease, claimStartedAt + this.options.leaseMs);
    if (this.lifecycle !== "running") active.requestHandoff();
    this.runs.set(run.id, active);
    this.log.debug({ runId: run.id, fence: run.fence, takeover: run.takeover }, "claimed run");
    const execution = (async () => {
      let outcome: RunOutcome;
      try {
        if (!workflow) throw new Error(`no workflow "${run.workflow}" on this worker`);
        outcome = await executeRun({
          store: this.deps.store,
          workflow,
          run,
          active,
          log: this.log,
          maxPayloadBytes: this.deps.maxPayloadBytes,
        });
      } catch (error) {
        // The store failed under us; the lease will expire and another worker resumes the run.
        this.log.error(
          { err: error, runId: run.id },
          "run execution failed in the runtime; leaving it to lease expiry",
        );
        active.loseLease(new LeaseLostError(`run ${run.id}: ${String(error)}`, { cause: error }));
        outcome = { kind: "lease-lost" };
      }
      this.settle(run.id, outcome);
    })();
    this.executions.add(execution);
    void execution.finally(() => this.executions.delete(execution));
  }

  private settle(runId: string, outcome: RunOutcome): void {
    this.runs.delete(runId);
    if (this.drainTally) {
      const key = (
        {
          completed: "completed",
          failed: "failed",
          "handed-off": "handedOff",
          sleeping: "sleeping",
          "lease-lost": "leaseLost",
        } as const
      )[outcome.kind];
      this.drainTally[key] += 1;
    }
    if (outcome.kind === "sleeping")
      setTimeout(() => this.wakeup.notify(), outcome.delayMs).unref();
    this.wakeup.notify();
  }

  private async drain(reason: string): Promise<ShutdownReport> {
    const startedAt = Date.now();
    const inFlight = this.runs.size;
    this.drainTally = { completed: 0, handedOff: 0, failed: 0, sleeping: 0, leaseLost: 0 };
    const wasRunning = this.lifecycle === "running";
    this.lifecycle = "draining";
    this.wakeup.notify();
    for (const run of this.runs.values()) run.requestHandoff();
    if (wasRunning) await this.deps.store.setWorkerState(this.id, "draining");
    await this.loop;
    while (this.executions.size > 0) await Promise.allSettled([...this.executions]);
    await this.leases.stop();
    this.unsubscribeWake?.();
    this.removeSignals?.();
    this.lifecycle = "stopped";
    const report: ShutdownReport = {
      workerId: this.id,
      reason,
      startedAt,
      durationMs: Date.now() - startedAt,
      inFlight,
      ...this.drainTally,
    };
    if (wasRunning) {
      await this.deps.store.setWorkerState(this.id, "stopped");
      await this.deps.store.saveShutdownReport(this.id, JSON.stringify(report));
    }
    this.deps.onState?.(this, "stopped");
    this.log.info(report, "worker stopped");
    return report;
  }
}
