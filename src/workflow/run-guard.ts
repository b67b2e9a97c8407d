import type { Logger } from "pino";
import type { JournalEntry, JournalKind, Lease, Store, StepWrite } from "../store/store.js";
import type { StepDurations } from "../worker/step-durations.js";
import type { BatonMetrics, RecoveryTimer } from "../metrics/baton-metrics.js";
import { LeaseLostError, NonDeterminismError } from "./errors.js";
import { RunHalted, type Halt } from "./halt.js";
import type { ResolvedRetryPolicy } from "./retry.js";

/** What the worker lets a run see of its own state. */
export interface RunControl {
  /** Aborted when this worker must stop the run at once (lease lost, cancelled, self-fenced). */
  readonly signal: AbortSignal;
  /** Aborted when the worker wants the run handed off at its next step boundary. */
  readonly handoffSignal: AbortSignal;
  /** Aborted at the step deadline of a shutdown: steps in flight must stop (and may save progress). */
  readonly deadlineSignal: AbortSignal;
  /** The step deadline, epoch ms, once the worker is shutting down. */
  readonly deadline: number | undefined;
  /** True once the worker is shutting down: no step that would outlast `deadline` may start. */
  readonly draining: boolean;
  /** Throws a LeaseLostError when the worker can no longer trust its lease (self-fencing). */
  assertLeaseValid(): void;
  /** Aborts `signal` with this error: the run is no longer ours. */
  loseLease(error: LeaseLostError): void;
}

export type RunGuardDeps = {
  store: Store;
  lease: Lease;
  journal: readonly JournalEntry[];
  control: RunControl;
  log: Logger;
  maxPayloadBytes: number;
  workflowRetry: ResolvedRetryPolicy;
  workflowName: string;
  /** Recent step durations: recorded by attempts, read by drain-aware dispatch. */
  durations: StepDurations;
  metrics: BatonMetrics;
  /** Observed when the first new step starts, for a run resumed after a handoff or a crash. */
  recovery?: RecoveryTimer;
};

/**
 * The machinery every journaled call of one run goes through: the journal as loaded,
 * fenced writes, the checks made before anything new starts, and the halt that unwinds the
 * workflow function. Once the run halts, nothing more is written and every call throws.
 */
export class RunGuard {
  readonly runId: string;
  private readonly journal: Map<number, JournalEntry>;
  private haltedBy: Halt | undefined;

  constructor(readonly deps: RunGuardDeps) {
    this.runId = deps.lease.runId;
    this.journal = new Map(deps.journal.map((entry) => [entry.seq, entry]));
  }

  get control(): RunControl {
    return this.deps.control;
  }

  get log(): Logger {
    return this.deps.log;
  }

  get halted(): Halt | undefined {
    return this.haltedBy;
  }

  /** The journal entry at `seq`, after checking it is the same call the code makes now. */
  recorded(seq: number, name: string, kind: JournalKind): JournalEntry | undefined {
    const entry = this.journal.get(seq);
    if (entry && (entry.name !== name || entry.kind !== kind)) {
      this.halt({
        kind: "park",
        error: new NonDeterminismError(
          `run ${this.runId}: at sequence ${seq} the journal has ${entry.kind} "${entry.name}" but the code ` +
            `now calls ${kind} "${name}"; the workflow changed under a run in flight. The run is parked with its ` +
            `journal intact: deploy code that replays it, or version the workflow.`,
        ),
      });
    }
    return entry;
  }

  /**
   * Checks made before anything new starts: ownership, self-fencing, a requested handoff,
   * and, on a draining worker, whether the step is expected to finish before its deadline
   * (`expectedMs`, else the step's learned p95); if not, the run is handed off instead.
   */
  beforeNewWork(step?: string, expectedMs?: number): void {
    const control = this.deps.control;
    this.assertStillOwner();
    if (control.deadlineSignal.aborted) this.halt({ kind: "handoff", reason: "step-deadline" });
    if (control.handoffSignal.aborted) this.halt({ kind: "handoff", reason: "shutdown" });
    if (control.draining && control.deadline !== undefined && step !== undefined) {
      const expected = expectedMs ?? this.deps.durations.p95(this.deps.workflowName, step);
      if (expected !== undefined && expected > control.deadline - Date.now())
        this.halt({ kind: "handoff", reason: "expected-duration" });
    }
    // Nothing stops this run from starting new work: if it was resumed, it has recovered.
    this.deps.recovery?.stepStarted();
  }

  /**
   * Halts (lease lost) unless this worker still owns the run and may trust its lease now.
   * Called before new work and again right before an effect's call: a worker frozen while
   * it wrote the intent must not call the outside world on a lease that has since run out.
   */
  assertStillOwner(): void {
    const control = this.deps.control;
    if (control.signal.aborted) this.halt({ kind: "lease-lost", error: this.leaseLost() });
    try {
      control.assertLeaseValid();
    } catch (error) {
      if (error instanceof LeaseLostError) {
        control.loseLease(error);
        this.halt({ kind: "lease-lost", error });
      }
      throw error;
    }
  }

  /** After an attempt settled: halt if the run was lost, or if a shutdown cut the attempt short. */
  afterAttempt(interrupted: boolean): void {
    this.throwIfHalted();
    if (this.deps.control.signal.aborted)
      this.halt({ kind: "lease-lost", error: this.leaseLost() });
    // Stopped by a shutdown's step deadline: an interruption, not a failed attempt.
    if (interrupted && this.deps.control.deadlineSignal.aborted)
      this.halt({ kind: "handoff", reason: "step-deadline" });
  }

  /** Waits out a retry backoff; a lost lease or a requested handoff ends the wait early. */
  async waitBeforeRetry(delayMs: number): Promise<void> {
    const { signal, handoffSignal } = this.deps.control;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        handoffSignal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, delayMs);
      signal.addEventListener("abort", done, { once: true });
      handoffSignal.addEventListener("abort", done, { once: true });
    });
    this.beforeNewWork();
  }

  /**
   * A fenced journal write; a refusal means another owner or a cancel, and halts the run.
   * A write that throws is the store's failure, not the run's: the run halts
   * (`store-failed`) and is resumed from its journal, never failed for it.
   */
  async write(write: StepWrite): Promise<void> {
    let ok: boolean;
    // Timed inline rather than through metrics.timeCheckpoint: one async frame less per step.
    const startedAt = performance.now();
    try {
      ok = await this.deps.store.writeStep(this.deps.lease, write);
      this.deps.metrics.checkpointFinished((performance.now() - startedAt) / 1000);
    } catch (error) {
      this.deps.metrics.checkpointFinished((performance.now() - startedAt) / 1000);
      // Steps still running beside this one (Promise.all) must stop too.
      this.deps.control.loseLease(
        new LeaseLostError(
          `run ${this.runId}: the store failed a journal write; this worker stops the run here`,
          { cause: error },
        ),
      );
      this.halt({ kind: "store-failed", error });
    }
    if (!ok) {
      this.deps.metrics.staleWriteRejected();
      const error = new LeaseLostError(
        `run ${this.runId}: the store refused a write with fence ${this.deps.lease.fence}; ` +
          `another worker owns the run now, or it was cancelled. This worker stops it here.`,
      );
      this.deps.control.loseLease(error);
      this.halt({ kind: "lease-lost", error });
    }
  }

  /** Collection is over: the guard goes live again, for the compensations. */
  endCollection(): void {
    if (this.haltedBy?.kind === "collected") this.haltedBy = undefined;
  }

  throwIfHalted(): void {
    if (this.haltedBy) throw new RunHalted(this.haltedBy);
  }

  halt(halt: Halt): never {
    this.haltedBy ??= halt;
    throw new RunHalted(this.haltedBy);
  }

  private leaseLost(): LeaseLostError {
    const reason: unknown = this.deps.control.signal.reason;
    return reason instanceof LeaseLostError
      ? reason
      : new LeaseLostError(`run ${this.runId} was stopped on this worker`, { cause: reason });
  }
}
