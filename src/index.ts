/**
 * Baton: durable, shutdown-safe workflows for long-running AI agents.
 *
 * @example
 * ```ts
 * import { Baton, defineWorkflow } from "baton";
 * const hello = defineWorkflow({ name: "hello" }, async (ctx, input: { who: string }) =>
 *   ctx.step("greet", () => `hello ${input.who}`));
 * const baton = await Baton.open({ store: "sqlite:baton.db", workflows: [hello] });
 * await baton.worker().start();
 * const run = await baton.start(hello, { who: "world" });
 * console.log(await run.result());
 * ```
 * @module
 */
export { Baton, type BatonOptions, type StartOptions } from "./baton.js";
export { RunHandle, type ResultOptions } from "./run-handle.js";
export type { RunDetails, RunSummary, StepView } from "./run-view.js";
export { defineWorkflow, isWorkflow } from "./workflow/define-workflow.js";
export type {
  Compensate,
  CompensationContext,
  EffectCheck,
  EffectContext,
  EffectOptions,
  EffectSpec,
  OnShutdown,
  StepContext,
  StepFunction,
  StepOptions,
  Workflow,
  WorkflowContext,
  WorkflowFunction,
  WorkflowOptions,
} from "./workflow/types.js";
export type { RetryPolicy } from "./workflow/retry.js";
export {
  BatonError,
  CancelledError,
  CompensationFailedError,
  ConfigError,
  LeaseLostError,
  NonDeterminismError,
  RetryableError,
  StepDeadlineError,
  TerminalError,
  ValidationError,
  type SerializedError,
} from "./workflow/errors.js";
export { Worker, type WorkerLifecycleState } from "./worker/worker.js";
export type { DrainTally, ShutdownReport } from "./worker/shutdown-report.js";
export type { WorkerOptions } from "./worker/worker-options.js";
export type { RunStatus, RunEvent } from "./store/store.js";
