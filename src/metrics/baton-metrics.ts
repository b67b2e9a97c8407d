import { Counter, Gauge, Registry } from "prom-client";
import type { ShutdownReport } from "../lifecycle/types.js";
import { RUN_STATUSES, type RunStatus, type Store } from "../store/store.js";
import type { DrainTally } from "../worker/shutdown-report.js";
import {
  DRAIN_OUTCOMES,
  EXECUTION_OUTCOMES,
  STEP_OUTCOMES,
  type CompensationOutcome,
  type DrainOutcome,
  type EffectResolution,
  type ExecutionOutcome,
  type HandoffReason,
  type RecoveryCause,
  type ShutdownOutcome,
  type StepOutcome,
} from "./labels.js";
import { createRecordedFamilies, type RecordedFamilies } from "./metric-families.js";
import { countOrphanedRuns, type OrphanSource } from "./orphaned-runs.js";

const DRAIN_KEYS: Record<DrainOutcome, keyof DrainTally> = {
  completed: "completed",
  "handed-off": "handedOff",
  "to-compensate": "toCompensate",
  compensated: "compensated",
  "failed-to-checkpoint": "failedToCheckpoint",
  failed: "failed",
  sleeping: "sleeping",
  "lease-lost": "leaseLost",
};

export type BatonMetricsOptions = {
  /**
   * Where Baton's families are registered. (Default: a new `Registry`, so they never mix
   * with prom-client's global default registry, whose process metrics do not pass
   * `promtool check metrics`.)
   */
  registry?: Registry;
  /** The store whose runs `baton_runs` and `baton_runs_orphaned` count at each scrape. */
  store?: MetricsStore;
};

/** What the scrape-time gauges read: `countRuns` for `baton_runs`, the rest for orphans. */
export type MetricsStore = Pick<Store, "countRuns"> & OrphanSource;

/**
 * Baton's Prometheus metrics (DESIGN.md §8), on a registry of their own. Each method is
 * one call site in the runtime; durations are passed in seconds. Labels are closed sets
 * (see `labels.ts`) plus the workflow name: never a run id, a worker id or a step name.
 *
 * `baton_runs{status}` and `baton_runs_orphaned` describe the whole store, not this
 * process: they are read from the store at each scrape, so every worker reports the same
 * value (aggregate them with `max`, not `sum`). Everything else is this process's own.
 */
export class BatonMetrics {
  readonly registry: Registry;

  private readonly families: RecordedFamilies;
  private readonly inflightSources = new Set<() => number>();
  private store: MetricsStore | undefined;
  private reading: Promise<StoreReading> | undefined;

  constructor(options: BatonMetricsOptions = {}) {
    const registry = (this.registry = options.registry ?? new Registry());
    const registers = [registry];
    this.store = options.store;
    this.families = createRecordedFamilies(registry);
    const storeErrors: Counter = new Counter({
      name: "baton_metrics_store_errors_total",
      help: "Scrapes whose store-wide gauges (baton_runs, baton_runs_orphaned) could not be read.",
      registers,
      collect: () => this.collectStoreErrors(storeErrors),
    });
    const inflight: Gauge = new Gauge({
      name: "baton_worker_inflight_runs",
      help: "Runs executing on this process's workers now.",
      registers,
      collect: () => this.collectInflight(inflight),
    });
    const runs: Gauge<"status"> = new Gauge({
      name: "baton_runs",
      help: "Runs in the store by status, read at scrape time (the same value on every worker).",
      labelNames: ["status"],
      registers,
      collect: () => this.collectRuns(runs),
    });
    const orphaned: Gauge = new Gauge({
      name: "baton_runs_orphaned",
      help: "Runs (running or compensating) whose owner's lease has expired and that no worker has taken over yet, read at scrape time.",
      registers,
      collect: () => this.collectOrphaned(orphaned),
    });
  }

  /** Reads `baton_runs` and `baton_runs_orphaned` from this store at each scrape. */
  observeStore(store: MetricsStore): void {
    this.store = store;
  }

  /**
   * Adds a source of `baton_worker_inflight_runs` (e.g. `() => worker.inFlight`); the
   * gauge is the sum of all sources. Returns a function that removes it.
   */
  observeInflight(source: () => number): () => void {
    this.inflightSources.add(source);
    return () => this.inflightSources.delete(source);
  }

  /** Creates the step series of these workflows at zero, so a rate is defined from the start. */
  registerWorkflows(names: Iterable<string>): void {
    for (const workflow of names) {
      for (const outcome of STEP_OUTCOMES) this.families.steps.inc({ workflow, outcome }, 0);
      for (const outcome of EXECUTION_OUTCOMES)
        this.families.executions.inc({ workflow, outcome }, 0);
    }
  }

  /** One attempt of one step ended after `seconds`. */
  stepFinished(workflow: string, outcome: StepOutcome, seconds: number): void {
    this.families.steps.inc({ workflow, outcome });
    this.families.stepDuration.observe({ workflow }, seconds);
  }

  /** A fenced journal write took `seconds` (whether or not the store accepted it). */
  checkpointFinished(seconds: number): void {
    this.families.checkpointDuration.observe(seconds);
  }

  /** Times `write()` as a checkpoint and returns its result: `await m.timeCheckpoint(() => store.writeStep(…))`. */
  timeCheckpoint<T>(write: () => Promise<T>): Promise<T> {
    return timed(write, (seconds) => this.checkpointFinished(seconds));
  }

  /** One claim statement took `seconds`. */
  claimFinished(seconds: number): void {
    this.families.claimLatency.observe(seconds);
  }

  /** Times `claim()` and returns its result: `await m.timeClaim(() => store.claimRuns(…))`. */
  timeClaim<T>(claim: () => Promise<T>): Promise<T> {
    return timed(claim, (seconds) => this.claimFinished(seconds));
  }

  /** A run was handed off (released for another worker) for `reason`. */
  handedOff(reason: HandoffReason): void {
    this.families.handoffs.inc({ reason });
  }

  /** A resumed run started its next step `seconds` after its handoff or lease expiry. */
  recovered(cause: RecoveryCause, seconds: number): void {
    this.families.recovery.observe({ cause }, Math.max(0, seconds));
  }

  /**
   * Starts the recovery clock of a run claimed after a handoff or a lease expiry that
   * happened at `since` (epoch ms). Call `stepStarted()` on the answer when the run's
   * first step that is not replayed starts (or when the run ends without one); only the
   * first call observes.
   */
  startRecovery(cause: RecoveryCause, since: number): RecoveryTimer {
    let pending = true;
    return {
      cause,
      since,
      stepStarted: (at = Date.now()) => {
        if (!pending) return;
        pending = false;
        this.recovered(cause, (at - since) / 1000);
      },
    };
  }

  /**
   * The store refused a fenced write (a journal write, or the run's completion, failure,
   * release or compensation) because the writer's fence is stale: another worker owns the
   * run now, or it was cancelled. Lease renewals that come back short are not counted.
   */
  staleWriteRejected(): void {
    this.families.staleWrites.inc();
  }

  /** An effect was resolved this way. */
  effectResolved(resolution: EffectResolution): void {
    this.families.effects.inc({ resolution });
  }

  /** A completed step or effect carries a compensation. */
  compensationRegistered(): void {
    this.families.compensationsRegistered.inc();
  }

  /** A compensation ran to this outcome. */
  compensationFinished(outcome: CompensationOutcome): void {
    this.families.compensations.inc({ outcome });
  }

  /** One execution of a run on this worker (one claim) ended this way. */
  runExecutionFinished(workflow: string, outcome: ExecutionOutcome): void {
    this.families.executions.inc({ workflow, outcome });
  }

  /**
   * A shutdown ended: observes its duration and each phase that ran, counts its outcome,
   * and, when the report carries the worker's drain tally (`runs`), what became of the
   * runs in flight.
   */
  shutdownFinished(report: ShutdownReport & { runs?: DrainTally }): void {
    this.families.shutdownDuration.observe(report.durationMs / 1000);
    for (const phase of report.phases) {
      if (!phase.skipped)
        this.families.phaseDuration.observe({ phase: phase.phase }, phase.durationMs / 1000);
    }
    this.families.shutdowns.inc({ outcome: shutdownOutcome(report) });
    if (report.runs) {
      for (const outcome of DRAIN_OUTCOMES) {
        const count = report.runs[DRAIN_KEYS[outcome]];
        if (count > 0) this.families.drainRuns.inc({ outcome }, count);
      }
    }
  }

  /** The exposition text of Baton's registry. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  private collectInflight(gauge: Gauge): void {
    let total = 0;
    for (const source of this.inflightSources) total += source();
    gauge.set(total);
  }

  /**
   * One read of the store per scrape, shared by the collectors that need it: a scrape
   * starts every collector in the same pass, so they all find the same pending read.
   */
  private readStore(): Promise<StoreReading> | undefined {
    const store = this.store;
    if (!store) return undefined;
    this.reading ??= (async (): Promise<StoreReading> => {
      // Async wrappers: a store may also throw synchronously (a closed SQLite handle).
      const [counts, orphaned] = await Promise.allSettled([
        (async () => store.countRuns())(),
        (async () => countOrphanedRuns(store))(),
      ]);
      return {
        counts: counts.status === "fulfilled" ? counts.value : undefined,
        orphaned: orphaned.status === "fulfilled" ? orphaned.value : undefined,
      };
    })().finally(() => (this.reading = undefined));
    return this.reading;
  }

  private async collectRuns(gauge: Gauge<"status">): Promise<void> {
    const reading = await this.readStore();
    if (!reading) return;
    // An absent series is honest; a stale one would hide that the store is unreachable.
    gauge.reset();
    const { counts } = reading;
    if (counts) for (const status of RUN_STATUSES) gauge.set({ status }, counts[status] ?? 0);
  }

  private async collectOrphaned(gauge: Gauge): Promise<void> {
    const reading = await this.readStore();
    // A gauge without labels always has its one series: NaN says "unknown", not "none".
    if (reading) gauge.set(reading.orphaned ?? Number.NaN);
  }

  private async collectStoreErrors(counter: Counter): Promise<void> {
    const reading = await this.readStore();
    if (reading && (!reading.counts || reading.orphaned === undefined)) counter.inc();
  }
}

type StoreReading = {
  counts: Partial<Record<RunStatus, number>> | undefined;
  orphaned: number | undefined;
};

/** The recovery clock of one resumed run; see {@link BatonMetrics.startRecovery}. */
export type RecoveryTimer = {
  readonly cause: RecoveryCause;
  /** When the run was interrupted (handoff) or its lease expired (crash), epoch ms. */
  readonly since: number;
  /** Observes `baton_recovery_seconds` once, at `at` (default: now). */
  stepStarted(at?: number): void;
};

export function shutdownOutcome(report: ShutdownReport): ShutdownOutcome {
  if (report.watchdog) return "watchdog";
  if (report.escalated) return "escalated";
  return report.exitCode === 0 ? "clean" : "unclean";
}

async function timed<T>(fn: () => Promise<T>, observe: (seconds: number) => void): Promise<T> {
  const startedAt = performance.now();
  try {
    return await fn();
  } finally {
    observe((performance.now() - startedAt) / 1000);
  }
}
