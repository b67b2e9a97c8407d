import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { createLifecycle } from "../lifecycle/lifecycle.js";
import type { Lifecycle } from "../lifecycle/lifecycle.js";
import type { PhaseContext } from "../lifecycle/types.js";
import { ManagementServer } from "../http/management-server.js";
import { apiRoutes } from "../http/api-routes.js";
import { BatonMetrics } from "../metrics/baton-metrics.js";
import { metricsRoute } from "../metrics/metrics-route.js";
import type { ClaimedRun, Store } from "../store/store.js";
import { LeaseLostError } from "../workflow/errors.js";
import type { Workflow } from "../workflow/types.js";
import { ActiveRun } from "./active-run.js";
import { LeaseKeeper } from "./lease-keeper.js";
import { executeClaimedRun } from "./claimed-execution.js";
import type { RunOutcome } from "./run-executor.js";
import { StepDurations } from "./step-durations.js";
import { Wakeup } from "./wakeup.js";
import {
  resolveWorkerOptions,
  type ResolvedWorkerOptions,
  type WorkerOptions,
} from "./worker-options.js";
import {
  countOutcome,
  emptyTally,
  storedShutdownReport,
  stepDeadlineWithin,
  type DrainTally,
  type ShutdownReport,
} from "./shutdown-report.js";
import { installWorkerSignals } from "./worker-signals.js";

/** How often a worker looks for abandoned runs of workflows with `abandonAfterMs`. */
const REAP_INTERVAL_MS = 1_000;

/**
 * A worker's lifecycle:
 * - `idle`: made, not started; claims nothing.
 * - `running`: registered in the store, heartbeating, claiming up to `concurrency` runs.
 * - `draining`: shutting down; claims nothing, brings each run to a step boundary and
 *   hands it off (or, in mode `drain`, lets it go on until the drain deadline).
 * - `stopped`: no run left on this worker, leases released, row marked stopped.
 */
export type WorkerLifecycleState = "idle" | "running" | "draining" | "stopped";

export type WorkerDeps = {
  store: Store;
  workflows: ReadonlyMap<string, Workflow>;
  log: Logger;
  maxPayloadBytes: number;
  /** (Default: a BatonMetrics of this worker's own) */
  metrics?: BatonMetrics;
  /** Called when the worker starts and stops, so `Baton` can wake it on local starts. */
  onState?: (worker: Worker, state: WorkerLifecycleState) => void;
};

/**
 * Claims runs and executes them, up to `concurrency` at a time. Reading order: `start`
 * → `claimLoop` → `launch` → `executeClaimedRun` → `settle`. Shutdown is a `baton/lifecycle`
 * phase machine: `stopClaiming` (notReady) → `drainRuns` (drain) → `releaseLeftovers`
 * (finalize) → close.
 */
export class Worker {
  readonly id: string;
  readonly options: ResolvedWorkerOptions;
  /** The shutdown phase machine; add your own service's work and closeables to it. */
  readonly lifecycle: Lifecycle;
  private state_: WorkerLifecycleState = "idle";
  private readonly runs = new Map<string, ActiveRun>();
  private readonly executions = new Set<Promise<void>>();
  private readonly wakeup = new Wakeup();
  private readonly durations = new StepDurations();
  private readonly leases: LeaseKeeper;
  private readonly log: Logger;
  private loop: Promise<void> | undefined;
  private stopping: Promise<ShutdownReport> | undefined;
  private exitWhenStopped = false;
  private unsubscribeWake: (() => void) | undefined;
  private removeSignals: (() => void) | undefined;
  private management: ManagementServer | undefined;
  private tally: DrainTally | undefined;
  private stepDeadline: number | undefined;
  private markedDraining: Promise<void> | undefined;
  private readonly phaseStarts: Record<string, number> = {};
  private readonly metrics: BatonMetrics;
  private removeInflight: (() => void) | undefined;

  constructor(
    private readonly deps: WorkerDeps,
    options: WorkerOptions = {},
  ) {
    this.options = resolveWorkerOptions(options);
    this.metrics = deps.metrics ?? new BatonMetrics({ store: deps.store });
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
    this.lifecycle =
      this.options.lifecycle ??
      createLifecycle({
        ...this.options.budget,
        exitOnStop: false,
        logReport: this.options.handleSignals,
        onReport: (report) => {
          // After the lifecycle has written the report line (it does so right after this call).
          if (this.exitWhenStopped) setImmediate(() => process.exit(report.exitCode));
        },
      });
    this.attachShutdownPhases();
  }

  get state(): WorkerLifecycleState {
    return this.state_;
  }

  /** Runs executing on this worker now. */
  get inFlight(): number {
    return this.runs.size;
  }

  /** The management server's port, once started with `http`. */
  get httpPort(): number | undefined {
    const address = this.management?.server.address();
    return typeof address === "object" && address ? address.port : undefined;
  }

  /**
   * Registers the worker and starts claiming; starts the management server when `http`
   * is set, and handles SIGTERM/SIGINT unless `handleSignals: false` (the first signal
   * shuts down gracefully and exits, a second skips to finalize).
   */
  async start(): Promise<void> {
    if (this.state_ !== "idle") throw new Error(`worker ${this.id} was already started`);
    this.state_ = "running";
    const { store, workflows } = this.deps;
    await store.registerWorker({
      id: this.id,
      state: "running",
      host: hostname(),
      pid: process.pid,
      concurrency: this.options.concurrency,
    });
    await store.registerWorkflows(
      [...workflows.values()].map(({ name, version }) => ({ name, version })),
    );
    if (this.options.http) {
      this.management = new ManagementServer(
        {
          ready: () => this.lifecycle.ready && this.state_ === "running",
          drain: (reason) => void this.shutdownAndExit(reason),
        },
        {
          ...this.options.http,
          routes: [
            metricsRoute(this.metrics),
            ...apiRoutes(store),
            ...(this.options.http.routes ?? []),
          ],
        },
      );
      await this.management.listen();
      // Registered first, so it closes last: probes keep answering until the very end.
      this.lifecycle.addCloseable({
        name: "management server",
        close: () => this.management?.close(),
      });
    }
    this.metrics.registerWorkflows(workflows.keys());
    this.removeInflight = this.metrics.observeInflight(() => this.runs.size);
    this.leases.start();
    this.unsubscribeWake = store.onWake(() => this.wakeup.notify());
    if (this.options.handleSignals) {
      this.removeSignals = installWorkerSignals({
        first: (signal) => void this.shutdownAndExit(signal),
        again: (signal) => this.lifecycle.escalate(`second ${signal}`),
      });
    }
    this.deps.onState?.(this, "running");
    this.loop = this.claimLoop();
    this.log.info(
      { concurrency: this.options.concurrency, workflows: [...workflows.keys()] },
      "worker started",
    );
  }

  /** Asks the claim loop to look for work now (a run was started in this process). */
  wake(): void {
    this.wakeup.notify();
  }

  /**
   * Graceful stop through every shutdown phase; resolves with the report. The process
   * is left running (a signal or `POST /drain` also exits it). Idempotent: every call
   * returns the same promise.
   */
  stop(reason = "stop() called"): Promise<ShutdownReport> {
    this.stopping ??= this.lifecycle.stop(reason).then((lifecycleReport) => {
      // Kept through close: a SIGTERM then (the kubelet's, after a quick POST /drain) must
      // not kill the process with 143. A worker that exits the process keeps them to the end.
      if (!this.exitWhenStopped) this.removeSignals?.();
      const report = { ...lifecycleReport, workerId: this.id, runs: this.tally ?? emptyTally() };
      this.metrics.shutdownFinished(report);
      return report;
    });
    return this.stopping;
  }

  private shutdownAndExit(reason: string): Promise<ShutdownReport> {
    this.exitWhenStopped = true;
    return this.stop(reason);
  }

  private async claimLoop(): Promise<void> {
    const { store, workflows } = this.deps;
    const names = [...workflows.keys()];
    const abandonRules = [...workflows.values()].flatMap((w) =>
      w.abandonAfterMs === undefined
        ? []
        : [{ workflow: w.name, abandonAfterMs: w.abandonAfterMs }],
    );
    let reapedAt = 0;
    while (this.state_ === "running") {
      // Before claiming, so a run past abandonAfterMs is compensated rather than resumed.
      if (abandonRules.length > 0 && Date.now() - reapedAt >= REAP_INTERVAL_MS) {
        reapedAt = Date.now();
        await store.reapAbandoned(abandonRules).then(
          (ids) =>
            ids.length > 0 &&
            this.log.warn({ runs: ids }, "abandoned runs marked for compensation"),
          (error: unknown) => this.log.error({ err: error }, "abandonment check failed"),
        );
      }
      const free = this.options.concurrency - this.runs.size;
      if (free > 0) {
        const claimStartedAt = Date.now();
        try {
          const claimed = await this.metrics.timeClaim(() =>
            store.claimRuns(this.id, names, free, this.options.leaseMs),
          );
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
    const active = new ActiveRun(lease, this.trustedUntil(run, claimStartedAt), run.workflow);
    // A claim that raced with the start of shutdown goes the way of the runs already held.
    if (this.stepDeadline !== undefined) this.beginShutdownOf(active, this.stepDeadline);
    this.runs.set(run.id, active);
    this.log.debug({ runId: run.id, fence: run.fence, takeover: run.takeover }, "claimed run");
    const execution = executeClaimedRun({
      store: this.deps.store,
      workflow,
      run,
      active,
      workerId: this.id,
      log: this.log,
      maxPayloadBytes: this.deps.maxPayloadBytes,
      durations: this.durations,
      metrics: this.metrics,
    }).then((outcome) => this.settle(active, outcome));
    this.executions.add(execution);
    void execution.finally(() => this.executions.delete(execution));
  }

  /**
   * How long a new lease is trusted. A store on this process's clock (SQLite) says when
   * the lease it granted expires, however long the claim waited for the write lock; for
   * a database clock, the moment the claim was sent plus the lease is never later than
   * the database's expiry, whatever the skew between the clocks.
   */
  private trustedUntil(run: ClaimedRun, claimStartedAt: number): number {
    const sent = claimStartedAt + this.options.leaseMs;
    if (this.deps.store.capabilities.clock !== "local" || run.leaseExpiresAt === null) return sent;
    return Math.max(sent, run.leaseExpiresAt);
  }

  private settle(active: ActiveRun, outcome: RunOutcome): void {
    active.dispose();
    if (this.runs.get(active.lease.runId) !== active) return; // already force-released at finalize
    this.runs.delete(active.lease.runId);
    this.metrics.runExecutionFinished(active.workflow, outcome.kind);
    this.log.info(
      {
        runId: active.lease.runId,
        workflow: active.workflow,
        fence: active.lease.fence,
        outcome: outcome.kind,
      },
      "run execution ended",
    );
    if (this.tally) countOutcome(this.tally, outcome.kind);
    if (outcome.kind === "sleeping")
      setTimeout(() => this.wakeup.notify(), outcome.delayMs).unref();
    this.wakeup.notify();
  }

  private attachShutdownPhases(): void {
    const lc = this.lifecycle;
    const mark = (phase: string) => (this.phaseStarts[phase] = Date.now());
    lc.on("notReady", "worker: stop claiming", (ctx) => {
      mark("notReady");
      this.stopClaiming(ctx);
    });
    lc.on("stopIntake", "worker: claim loop", async () => {
      mark("stopIntake");
      await this.loop;
      await this.markedDraining;
    });
    lc.on("drain", "worker: drain runs", async (ctx) => {
      mark("drain");
      await this.drainRuns(ctx);
    });
    lc.on("finalize", "worker: release leases", async (ctx) => {
      mark("finalize");
      await this.releaseLeftovers(ctx);
    });
  }

  /**
   * notReady: claim nothing more, at once, and put every run on its shutdown course
   * (`checkpoint`: no new step starts, hand off at the next boundary; `drain`: go on while
   * steps fit before the step deadline); then mark the worker row draining.
   */
  private stopClaiming(ctx: PhaseContext): void {
    this.tally ??= { ...emptyTally(), inFlight: this.runs.size };
    const wasRunning = this.state_ === "running";
    this.state_ = "draining";
    this.wakeup.notify();
    const phases = this.lifecycle.plan.phases;
    const notReady = phases.find((p) => p.name === "notReady")!;
    const drain = phases.find((p) => p.name === "drain")!;
    const shutdownStartedAt = ctx.deadline - notReady.deadlineMs;
    this.stepDeadline = stepDeadlineWithin(shutdownStartedAt + drain.deadlineMs, drain.budgetMs);
    for (const run of this.runs.values()) this.beginShutdownOf(run, this.stepDeadline);
    // The row update is a store write: under load it may outlast notReady's 100 ms, so it
    // is awaited in stopIntake. Everything above happens at once, synchronously.
    if (wasRunning) {
      this.markedDraining = this.deps.store
        .setWorkerState(this.id, "draining")
        .catch((error: unknown) => {
          this.log.warn({ err: error }, "could not mark the worker draining in the store");
        });
    }
  }

  private beginShutdownOf(run: ActiveRun, stepDeadline: number): void {
    run.beginShutdown(
      this.deps.workflows.get(run.workflow)?.onShutdown ?? "checkpoint",
      stepDeadline,
    );
  }

  /** drain: waits until no run is left on this worker, or the drain deadline. */
  private async drainRuns(ctx: PhaseContext): Promise<void> {
    await Promise.race([
      (async () => {
        while (this.executions.size > 0) await Promise.allSettled([...this.executions]);
      })(),
      new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true })),
    ]);
    ctx.report("runs", this.tally);
  }

  /**
   * finalize: a run still executing (a step that ignored its abort) is handed off anyway,
   * fenced, and aborted locally so it writes nothing more; then the leases and the
   * worker row are closed and the report is stored.
   */
  private async releaseLeftovers(ctx: PhaseContext): Promise<void> {
    const tally = (this.tally ??= { ...emptyTally(), inFlight: this.runs.size });
    for (const run of [...this.runs.values()]) {
      this.runs.delete(run.lease.runId);
      run.loseLease(
        new LeaseLostError(
          `run ${run.lease.runId}: handed off at finalize while a step was still running`,
        ),
      );
      const released = await this.deps.store.releaseRun(run.lease, "handoff").catch(() => false);
      if (released) {
        tally.failedToCheckpoint += 1;
        this.metrics.handedOff("finalize");
      } else {
        tally.leaseLost += 1;
        this.metrics.staleWriteRejected();
      }
    }
    await this.leases.stop();
    this.removeInflight?.();
    this.unsubscribeWake?.();
    this.state_ = "stopped";
    ctx.report("runs", tally);
    if (this.loop) {
      await this.deps.store.setWorkerState(this.id, "stopped");
      await this.deps.store.saveShutdownReport(
        this.id,
        JSON.stringify(storedShutdownReport(this.id, this.phaseStarts, tally)),
      );
    }
    this.deps.onState?.(this, "stopped");
    this.log.info({ runs: tally }, "worker stopped");
  }
}
