import type { Logger } from "pino";
import type { JournalEntry, Lease, Store, StepWrite } from "../store/store.js";
import {
  LeaseLostError,
  NonDeterminismError,
  RetryableError,
  deserializeError,
  isTerminal,
  serializeError,
  type SerializedError,
} from "./errors.js";
import { RunHalted, type Halt } from "./halt.js";
import { backoffDelay, resolveRetryPolicy, type ResolvedRetryPolicy } from "./retry.js";
import { decodeJson, encodeJson } from "./serialize.js";
import type { JournalKind } from "../store/store.js";
import type { StepContext, StepFunction, StepOptions, WorkflowContext } from "./types.js";
import type { StepDurations } from "../worker/step-durations.js";

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

export type RunContextDeps = {
  store: Store;
  lease: Lease;
  journal: readonly JournalEntry[];
  control: RunControl;
  log: Logger;
  maxPayloadBytes: number;
  workflowRetry: ResolvedRetryPolicy;
  workflowName: string;
  /** Recent step durations: recorded here, read by drain-aware dispatch. */
  durations: StepDurations;
};

/**
 * The replaying `ctx` of one run on one worker. Each `step`/`sleep` call takes the next
 * sequence number; a journal entry at that number is returned (or thrown) without running
 * anything, and a new step is executed, retried by its policy, and committed (fenced)
 * before the call returns. Nothing is written once the run halts.
 */
export class RunContext implements WorkflowContext {
  readonly runId: string;
  readonly log: Logger;
  private nextSeq = 0;
  private readonly journal: Map<number, JournalEntry>;
  private haltedBy: Halt | undefined;

  constructor(private readonly deps: RunContextDeps) {
    this.runId = deps.lease.runId;
    this.log = deps.log;
    this.journal = new Map(deps.journal.map((entry) => [entry.seq, entry]));
  }

  get signal(): AbortSignal {
    return this.deps.control.signal;
  }

  /** Why the run stopped early, if it did. */
  get halted(): Halt | undefined {
    return this.haltedBy;
  }

  async step<T, Progress = unknown>(
    name: string,
    fn: StepFunction<T, Progress>,
    options: StepOptions = {},
  ): Promise<T> {
    this.throwIfHalted();
    const seq = this.nextSeq++;
    const recorded = this.replayed(seq, name, "step");
    if (recorded?.status === "completed") return decodeJson<T>(recorded.output);
    if (recorded?.status === "failed")
      throw deserializeError(JSON.parse(recorded.error ?? "{}") as SerializedError);
    this.beforeNewWork(name, options.expectedMs);
    const policy = options.retry
      ? resolveRetryPolicy(options.retry, `step "${name}" of run ${this.runId}`)
      : this.deps.workflowRetry;
    return this.execute(seq, name, fn, policy, recorded);
  }

  async sleep(name: string, ms: number): Promise<void> {
    this.throwIfHalted();
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`ctx.sleep("${name}", ${ms}): ms must be a finite number >= 0`);
    }
    const seq = this.nextSeq++;
    const recorded = this.replayed(seq, name, "sleep");
    let wakeAt: number;
    if (recorded?.status === "completed") {
      wakeAt = decodeJson<number>(recorded.output);
    } else {
      this.beforeNewWork();
      wakeAt = Date.now() + ms;
      await this.write({
        seq,
        name,
        kind: "sleep",
        status: "completed",
        output: JSON.stringify(wakeAt),
        attempts: 1,
      });
    }
    const remaining = wakeAt - Date.now();
    if (remaining > 0) this.halt({ kind: "sleep", delayMs: remaining });
  }

  private async execute<T, Progress>(
    seq: number,
    name: string,
    fn: StepFunction<T, Progress>,
    policy: ResolvedRetryPolicy,
    recorded: JournalEntry | undefined,
  ): Promise<T> {
    const what = `step "${name}" of run ${this.runId}`;
    let failedAttempts = recorded?.attempts ?? 0;
    let progress = recorded?.progress == null ? undefined : decodeJson<Progress>(recorded.progress);
    for (;;) {
      const attempt = failedAttempts + 1;
      const startedAt = Date.now();
      const stepSignal = new LazyStepSignal([this.signal, this.deps.control.deadlineSignal]);
      const control = this.deps.control;
      const s: StepContext<Progress> = {
        runId: this.runId,
        name,
        attempt,
        get signal() {
          return stepSignal.signal;
        },
        get deadline() {
          return control.deadline;
        },
        get progress() {
          return progress;
        },
        saveProgress: async (state: Progress) => {
          const encoded = encodeJson(state, `progress of ${what}`, this.deps.maxPayloadBytes);
          await this.write({
            seq,
            name,
            kind: "step",
            status: "running",
            progress: encoded,
            attempts: failedAttempts,
            startedAt,
          });
          progress = decodeJson<Progress>(encoded);
        },
      };
      let value: T;
      try {
        value = await fn(s);
      } catch (error) {
        this.throwIfHalted();
        if (this.signal.aborted) this.halt({ kind: "lease-lost", error: this.leaseLost() });
        // Stopped by a shutdown's step deadline: an interruption, not a failed attempt.
        if (control.deadlineSignal.aborted) this.halt({ kind: "handoff" });
        failedAttempts = attempt;
        const final = isTerminal(error) || failedAttempts >= policy.maxAttempts;
        const stored = JSON.stringify(serializeError(error));
        await this.write({
          seq,
          name,
          kind: "step",
          status: final ? "failed" : "retrying",
          error: stored,
          attempts: failedAttempts,
          startedAt,
        });
        if (final) throw error;
        const delay =
          error instanceof RetryableError && error.retryAfterMs !== undefined
            ? error.retryAfterMs
            : backoffDelay(policy, failedAttempts);
        this.log.info({ step: name, attempt, delayMs: delay, err: error }, "step failed; retrying");
        await this.waitBeforeRetry(delay);
        continue;
      } finally {
        stepSignal.dispose();
      }
      this.throwIfHalted();
      if (this.signal.aborted) this.halt({ kind: "lease-lost", error: this.leaseLost() });
      let output: string | null;
      try {
        output = encodeJson(value, `output of ${what}`, this.deps.maxPayloadBytes);
      } catch (error) {
        await this.write({
          seq,
          name,
          kind: "step",
          status: "failed",
          error: JSON.stringify(serializeError(error)),
          attempts: attempt,
          startedAt,
        });
        throw error;
      }
      await this.write({
        seq,
        name,
        kind: "step",
        status: "completed",
        output,
        attempts: attempt,
        startedAt,
      });
      this.deps.durations.record(this.deps.workflowName, name, Date.now() - startedAt);
      return decodeJson<T>(output);
    }
  }

  /** The journal entry at `seq`, after checking it is the same call the code makes now. */
  private replayed(seq: number, name: string, kind: JournalKind): JournalEntry | undefined {
    const recorded = this.journal.get(seq);
    if (recorded && (recorded.name !== name || recorded.kind !== kind)) {
      this.halt({
        kind: "park",
        error: new NonDeterminismError(
          `run ${this.runId}: at sequence ${seq} the journal has ${recorded.kind} "${recorded.name}" but the code ` +
            `now calls ${kind} "${name}"; the workflow changed under a run in flight. The run is parked with its ` +
            `journal intact: deploy code that replays it, or version the workflow.`,
        ),
      });
    }
    return recorded;
  }

  /**
   * Checks made before anything new starts: ownership, self-fencing, a requested handoff,
   * and, on a draining worker, whether the step is expected to finish before its deadline
   * (`expectedMs`, else the step's learned p95); if not, the run is handed off instead.
   */
  private beforeNewWork(step?: string, expectedMs?: number): void {
    if (this.signal.aborted) this.halt({ kind: "lease-lost", error: this.leaseLost() });
    try {
      this.deps.control.assertLeaseValid();
    } catch (error) {
      if (error instanceof LeaseLostError) {
        this.deps.control.loseLease(error);
        this.halt({ kind: "lease-lost", error });
      }
      throw error;
    }
    const control = this.deps.control;
    if (control.handoffSignal.aborted || control.deadlineSignal.aborted)
      this.halt({ kind: "handoff" });
    if (control.draining && control.deadline !== undefined && step !== undefined) {
      const expected = expectedMs ?? this.deps.durations.p95(this.deps.workflowName, step);
      if (expected !== undefined && expected > control.deadline - Date.now())
        this.halt({ kind: "handoff" });
    }
  }

  private async waitBeforeRetry(delayMs: number): Promise<void> {
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

  private async write(write: StepWrite): Promise<void> {
    const ok = await this.deps.store.writeStep(this.deps.lease, write);
    if (!ok) {
      const error = new LeaseLostError(
        `run ${this.runId}: the store refused a write with fence ${this.deps.lease.fence}; ` +
          `another worker owns the run now, or it was cancelled. This worker stops it here.`,
      );
      this.deps.control.loseLease(error);
      this.halt({ kind: "lease-lost", error });
    }
  }

  private leaseLost(): LeaseLostError {
    const reason: unknown = this.signal.reason;
    return reason instanceof LeaseLostError
      ? reason
      : new LeaseLostError(`run ${this.runId} was stopped on this worker`, { cause: reason });
  }

  private throwIfHalted(): void {
    if (this.haltedBy) throw new RunHalted(this.haltedBy);
  }

  private halt(halt: Halt): never {
    this.haltedBy ??= halt;
    throw new RunHalted(this.haltedBy);
  }
}

/**
 * A step's abort signal, made only when the step reads it (most steps never do, and an
 * AbortController per step is measurable on the hot path). It aborts with the run's signal
 * (lease lost, cancelled) or at a shutdown's step deadline, whichever comes first.
 */
class LazyStepSignal {
  private controller: AbortController | undefined;
  private readonly followers: Array<[AbortSignal, () => void]> = [];

  constructor(private readonly sources: readonly AbortSignal[]) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = (this.controller = new AbortController());
      for (const source of this.sources) {
        if (source.aborted) {
          controller.abort(source.reason);
          break;
        }
        const follow = () => controller.abort(source.reason);
        source.addEventListener("abort", follow, { once: true });
        this.followers.push([source, follow]);
      }
    }
    return this.controller.signal;
  }

  dispose(): void {
    for (const [source, follow] of this.followers) source.removeEventListener("abort", follow);
  }
}
