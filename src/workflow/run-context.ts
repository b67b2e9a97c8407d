import type { Logger } from "pino";
import type { JournalEntry } from "../store/store.js";
import { runAttempts } from "./attempts.js";
import { deserializeError, type SerializedError } from "./errors.js";
import type { Halt } from "./halt.js";
import { resolveRetryPolicy, type ResolvedRetryPolicy, type RetryPolicy } from "./retry.js";
import { RunGuard, type RunGuardDeps } from "./run-guard.js";
import { decodeJson } from "./serialize.js";
import type {
  Compensate,
  EffectContext,
  EffectOptions,
  EffectSpec,
  StepFunction,
  StepOptions,
  WorkflowContext,
} from "./types.js";

export type { RunControl } from "./run-guard.js";

/**
 * `forward`: run the workflow, executing what the journal does not have yet.
 * `collect`: replay only what is recorded, to collect the compensations of completed steps;
 * the first unrecorded call halts with `collected`.
 */
export type RunMode = "forward" | "collect";

export type RunContextDeps = RunGuardDeps & { mode: RunMode };

/** A completed step or effect with a compensation, in the order they completed. */
export type UndoEntry = {
  seq: number;
  name: string;
  /** The key of the step's own effect, if it was one; the compensation's key derives from it. */
  idempotencyKey: string;
  result: unknown;
  compensate: Compensate<unknown>;
  retry: RetryPolicy | undefined;
};

/** How an effect whose outcome was unknown (intent without result) was settled. */
export type EffectResolution = "checked-done" | "checked-not-done" | "rerun-unchecked";

/**
 * The replaying `ctx` of one run on one worker. Each `step`/`effect`/`sleep` call takes the
 * next sequence number; a journal entry at that number is returned (or thrown) without
 * running anything, and a new call is executed, retried by its policy, and committed
 * (fenced) before it returns. Nothing is written once the run halts.
 */
export class RunContext implements WorkflowContext {
  readonly runId: string;
  readonly log: Logger;
  readonly guard: RunGuard;
  /** Compensations of the completed steps seen so far, oldest first. */
  readonly undo: UndoEntry[] = [];
  private nextSeq = 0;

  constructor(private readonly deps: RunContextDeps) {
    this.guard = new RunGuard(deps);
    this.runId = this.guard.runId;
    this.log = deps.log;
  }

  get signal(): AbortSignal {
    return this.deps.control.signal;
  }

  /** Why the run stopped early, if it did. */
  get halted(): Halt | undefined {
    return this.guard.halted;
  }

  async step<T, Progress = unknown>(
    name: string,
    fn: StepFunction<T, Progress>,
    options: StepOptions = {},
  ): Promise<T> {
    this.guard.throwIfHalted();
    const seq = this.nextSeq++;
    const recorded = this.guard.recorded(seq, name, "step");
    const key = `${this.runId}:${seq}:${name}`;
    const value = await this.settle<T>(recorded, () => {
      this.guard.beforeNewWork(name, options.expectedMs);
      return runAttempts<T>(this.guard, {
        seq,
        name,
        kind: "step",
        policy: this.policy(options.retry, `step "${name}"`),
        recorded,
        invoke: (s) => fn(s as never),
      });
    });
    if (options.compensate) {
      if (recorded?.status !== "completed") this.deps.metrics.compensationRegistered();
      this.remember(seq, name, key, value, options.compensate, options.retry);
    }
    return value;
  }

  async effect<T>(name: string, spec: EffectSpec<T>, options: EffectOptions = {}): Promise<T> {
    this.guard.throwIfHalted();
    const seq = this.nextSeq++;
    const recorded = this.guard.recorded(seq, name, "effect");
    const key = spec.idempotencyKey ?? `${this.runId}:${seq}:${name}`;
    const unknownOutcome = recorded?.status === "pending" || recorded?.status === "running";
    if (recorded?.status === "completed") this.deps.metrics.effectResolved("replayed");
    const value = await this.settle<T>(
      recorded,
      () => {
        this.guard.beforeNewWork(name, options.expectedMs);
        if (!unknownOutcome) this.deps.metrics.effectResolved("executed");
        let resolving = unknownOutcome;
        return runAttempts<T>(this.guard, {
          seq,
          name,
          kind: "effect",
          policy: this.policy(options.retry, `effect "${name}"`),
          recorded,
          idempotencyKey: key,
          extra: { idempotencyKey: key, fence: this.deps.lease.fence },
          invoke: async (s) => {
            const e = s as EffectContext;
            if (resolving) {
              resolving = false;
              const answer = spec.check ? await spec.check(e) : undefined;
              await this.resolved(
                seq,
                name,
                key,
                answer === undefined
                  ? "rerun-unchecked"
                  : answer.done
                    ? "checked-done"
                    : "checked-not-done",
              );
              if (answer?.done) return answer.result;
            }
            return spec.run(e);
          },
        });
      },
      unknownOutcome,
    );
    if (spec.compensate && recorded?.status !== "completed")
      this.deps.metrics.compensationRegistered();
    if (spec.compensate)
      this.remember(seq, name, key, value, spec.compensate as Compensate<unknown>, options.retry);
    return value;
  }

  async sleep(name: string, ms: number): Promise<void> {
    this.guard.throwIfHalted();
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`ctx.sleep("${name}", ${ms}): ms must be a finite number >= 0`);
    }
    const seq = this.nextSeq++;
    const recorded = this.guard.recorded(seq, name, "sleep");
    if (recorded?.status === "completed") {
      const remaining = decodeJson<number>(recorded.output) - Date.now();
      // Collecting compensations does not wait for timers.
      if (remaining > 0 && this.deps.mode === "forward")
        this.guard.halt({ kind: "sleep", delayMs: remaining });
      return;
    }
    if (this.deps.mode === "collect") this.guard.halt({ kind: "collected" });
    this.guard.beforeNewWork();
    const wakeAt = Date.now() + ms;
    await this.guard.write({
      seq,
      name,
      kind: "sleep",
      status: "completed",
      output: JSON.stringify(wakeAt),
      attempts: 1,
    });
    if (ms > 0) this.guard.halt({ kind: "sleep", delayMs: ms });
  }

  /**
   * A recorded result is returned and a recorded failure thrown, without running anything.
   * Otherwise `execute` runs the call — except when collecting compensations, where an
   * unrecorded call ends the replay. An effect with an unknown outcome is settled first
   * even then: it may have changed the world, so it must be known, and compensated.
   */
  private async settle<T>(
    recorded: JournalEntry | undefined,
    execute: () => Promise<T>,
    unknownOutcome = false,
  ): Promise<T> {
    if (recorded?.status === "completed") return decodeJson<T>(recorded.output);
    if (recorded?.status === "failed")
      throw deserializeError(JSON.parse(recorded.error ?? "{}") as SerializedError);
    if (this.deps.mode === "collect" && !unknownOutcome) this.guard.halt({ kind: "collected" });
    return execute();
  }

  private remember(
    seq: number,
    name: string,
    key: string,
    result: unknown,
    compensate: Compensate<unknown>,
    retry: RetryPolicy | undefined,
  ): void {
    this.undo.push({ seq, name, idempotencyKey: key, result, compensate, retry });
  }

  private async resolved(
    seq: number,
    name: string,
    key: string,
    resolution: EffectResolution,
  ): Promise<void> {
    this.log.warn({ step: name, idempotencyKey: key, resolution }, "effect outcome was unknown");
    this.deps.metrics.effectResolved(resolution);
    const { lease, store } = this.deps;
    await store.appendEvent({
      runId: this.runId,
      kind: "effect-resolved",
      workerId: lease.workerId,
      fence: lease.fence,
      detail: JSON.stringify({ seq, name, idempotencyKey: key, resolution }),
    });
  }

  private policy(retry: RetryPolicy | undefined, what: string): ResolvedRetryPolicy {
    return retry
      ? resolveRetryPolicy(retry, `${what} of run ${this.runId}`)
      : this.deps.workflowRetry;
  }
}
