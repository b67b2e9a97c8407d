/**
 * Baton's public types.
 *
 * Glossary (DESIGN.md §2):
 * - **workflow**: a named, versioned async function `(ctx, input) => output`.
 * - **run**: one execution of a workflow with one input; a stable `id` (a user-given id
 *   makes `start` idempotent).
 * - **step**: `ctx.step(name, fn)`, a unit whose result is recorded durably; on replay
 *   the recorded result is returned and `fn` is not called again.
 * - **effect**: `ctx.effect(name, spec)`, a step that changes the outside world; recorded
 *   as intent → result (outbox), with an idempotency key and a fence.
 * - **compensation**: the undo of a completed step or effect, run in reverse order when a
 *   run cannot go forward.
 * - **attempt**: one try of one step. **interruption**: a run handed off by a shutdown;
 *   it does not consume attempts.
 * - **lease**: a worker's time-limited ownership of a run. **fence**: an integer that
 *   grows by one at every claim; a write carrying an older fence is refused.
 * - **worker**: a process that claims runs and executes them, up to a concurrency limit.
 * - **handoff**: releasing a run's lease at a step boundary so another worker resumes it.
 * - **journal**: the ordered step records of a run.
 */
import type { Logger } from "pino";
import type { RetryPolicy } from "./retry.js";

/** What a worker does with a run in flight when it is asked to shut down. */
export type OnShutdown = "checkpoint" | "drain" | "compensate";

export type WorkflowOptions = {
  /** Unique name; runs are stored under it. */
  name: string;
  /** Recorded on each run. (Default: 1) */
  version?: number;
  /** (Default: "checkpoint": hand the run off at its next step boundary) */
  onShutdown?: OnShutdown;
  /** Default retry policy of this workflow's steps, effects and compensations. */
  retry?: RetryPolicy;
  /**
   * A run handed off or orphaned and not resumed within this long is compensated by any
   * worker that knows the workflow. (Default: off)
   */
  abandonAfterMs?: number;
};

export type StepOptions = {
  /** Overrides the workflow's retry policy for this step. */
  retry?: RetryPolicy;
  /** How long the step usually takes; a draining worker will not start it without this much time left. */
  expectedMs?: number;
  /**
   * Undoes the step's recorded result when the run cannot go forward. Runs at most once
   * to completion, in reverse order of the steps, journaled with its own idempotency key
   * (`c.idempotencyKey`); if a worker dies inside it, it runs again with the same key.
   */
  compensate?: Compensate<unknown>;
};

/**
 * What a step's function receives. The function may run more than once (a retry, or a
 * crash before its result was recorded); once its result is recorded it never runs again.
 */
export interface StepContext<Progress = unknown> {
  readonly runId: string;
  readonly name: string;
  /** 1 for the first try; interruptions by shutdown do not count. */
  readonly attempt: number;
  /** Aborts when the worker loses the run (lease lost, cancelled) or at the step deadline. */
  readonly signal: AbortSignal;
  /** Epoch ms by which the step should finish, when the worker has set one. */
  readonly deadline: number | undefined;
  /** The last state given to `saveProgress` by an earlier attempt or this one. */
  readonly progress: Progress | undefined;
  /** Durably records progress (fenced); a later attempt of this step starts from it. */
  saveProgress(state: Progress): Promise<void>;
}

export type StepFunction<T, Progress = unknown> = (s: StepContext<Progress>) => Promise<T> | T;

/** What an effect's functions receive: the step context plus what an external system needs. */
export interface EffectContext<Progress = unknown> extends StepContext<Progress> {
  /**
   * Stable across attempts, workers and restarts: `<runId>:<seq>:<name>` unless the effect
   * names its own. Pass it to the external system so it can apply the effect once.
   */
  readonly idempotencyKey: string;
  /** The run's fence now; an external system that keeps the highest fence seen per run can refuse a stale owner. */
  readonly fence: number;
}

/** What a compensation receives: why the run is being undone, and a key of its own. */
export interface CompensationContext extends EffectContext {
  /** Why the run cannot go forward (the failure, a cancel, abandonment). */
  readonly reason: { name: string; message: string } | undefined;
}

export type Compensate<T> = (c: CompensationContext, result: T) => Promise<void> | void;

/** `check`'s answer about an effect whose outcome is unknown. */
export type EffectCheck<T> = { done: true; result: T } | { done: false };

/**
 * An effect on the outside world, run through an outbox: the intent (key, fence) is
 * durable before `run` is called, and the result is recorded after.
 *
 * What may run twice: if the worker died between intent and result, the outcome is
 * unknown. Then `check` decides (done: the result is recorded and `run` is not called;
 * not done: `run` is called again with the same key). Without `check`, `run` is called
 * again with the same key: at-least-once, deduplicated by the external system on the key.
 */
export type EffectSpec<T> = {
  run: (e: EffectContext) => Promise<T> | T;
  check?: (e: EffectContext) => Promise<EffectCheck<T>> | EffectCheck<T>;
  compensate?: Compensate<T>;
  /** Your own idempotency key (stable for this run and effect). (Default: `<runId>:<seq>:<name>`) */
  idempotencyKey?: string;
};

export type EffectOptions = Omit<StepOptions, "compensate">;

/**
 * What a workflow function receives. The function is re-run from the top on every
 * resume: it must call the same steps in the same order, and keep its side effects
 * inside steps.
 */
export interface WorkflowContext {
  readonly runId: string;
  /** Aborts when this worker loses the run. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /**
   * Runs `fn` once and records its result (JSON) before returning it. On replay the
   * recorded value is returned without calling `fn`; a recorded failure is thrown again.
   * Values come back as JSON round-tripped (a `Date` becomes a string), on the first run too.
   */
  step<T, Progress = unknown>(
    name: string,
    fn: StepFunction<T, Progress>,
    options?: StepOptions,
  ): Promise<T>;
  /** A side effect through the outbox; see {@link EffectSpec} for what may run twice. */
  effect<T>(name: string, spec: EffectSpec<T>, options?: EffectOptions): Promise<T>;
  /** A durable timer: the run is released while it sleeps and resumed, on any worker, after `ms`. */
  sleep(name: string, ms: number): Promise<void>;
}

export type WorkflowFunction<I, O> = (ctx: WorkflowContext, input: I) => Promise<O>;

/** A workflow definition, made by `defineWorkflow`. */
export interface Workflow<I = unknown, O = unknown> {
  readonly kind: "baton.workflow";
  readonly name: string;
  readonly version: number;
  readonly onShutdown: OnShutdown;
  readonly retry: RetryPolicy | undefined;
  readonly abandonAfterMs: number | undefined;
  readonly fn: WorkflowFunction<I, O>;
}
