/**
 * The label values of Baton's metrics. Every label is drawn from a closed set (or, for
 * `workflow`, from the workflows a deployment defines), so the number of series stays
 * small whatever the number of runs: run ids, worker ids and step names never become
 * labels.
 */

/**
 * How one attempt of one step ended (`baton_steps_total{outcome}`).
 * - `completed`: returned; its result is committed.
 * - `retrying`: threw; another attempt follows after the backoff.
 * - `failed`: threw for the last time (terminal error or attempts exhausted).
 * - `interrupted`: stopped by the runtime, not by its own error: the step deadline of a
 *   shutdown, a lost lease, a cancel. Interruptions never consume attempts.
 */
export const STEP_OUTCOMES = ["completed", "retrying", "failed", "interrupted"] as const;
export type StepOutcome = (typeof STEP_OUTCOMES)[number];

/**
 * Why a run was handed off (`baton_handoffs_total{reason}`).
 * - `shutdown`: mode `checkpoint`, released at the next step boundary.
 * - `expected-duration`: a draining worker did not start a step expected (by `expectedMs`
 *   or its learned p95) to outlast the step deadline.
 * - `step-deadline`: a step was still running at the step deadline; its signal aborted.
 * - `finalize`: still executing at finalize (the step ignored its abort); released anyway.
 * - `store-error`: a journal write threw in the store; the run was released, not failed.
 */
export const HANDOFF_REASONS = [
  "shutdown",
  "expected-duration",
  "step-deadline",
  "finalize",
  "store-error",
] as const;
export type HandoffReason = (typeof HANDOFF_REASONS)[number];

/**
 * What a resumed run recovered from (`baton_recovery_seconds{cause}`).
 * - `handoff`: another worker released it at a step boundary; measured from the handoff.
 * - `crash`: its owner stopped renewing the lease; measured from the lease's expiry.
 */
export const RECOVERY_CAUSES = ["handoff", "crash"] as const;
export type RecoveryCause = (typeof RECOVERY_CAUSES)[number];

/**
 * How an effect was resolved (`baton_effects_total{resolution}`). The last three are the
 * unknown outcomes (an intent recorded, no result: the worker died inside the call), with
 * the names the `effect-resolved` event of the run's timeline uses.
 * - `executed`: nothing recorded before; `run` was called.
 * - `replayed`: its result was in the journal; nothing was called.
 * - `checked-done`: `check` found it done; its result was recorded without calling `run`.
 * - `checked-not-done`: `check` found it not done; `run` was called again.
 * - `rerun-unchecked`: no `check`; `run` was called again with the same idempotency key.
 */
export const EFFECT_RESOLUTIONS = [
  "executed",
  "replayed",
  "checked-done",
  "checked-not-done",
  "rerun-unchecked",
] as const;
export type EffectResolution = (typeof EFFECT_RESOLUTIONS)[number];

/** How one compensation ended (`baton_compensations_total{outcome}`). */
export const COMPENSATION_OUTCOMES = ["completed", "failed"] as const;
export type CompensationOutcome = (typeof COMPENSATION_OUTCOMES)[number];

/**
 * What became of a run a worker held when its shutdown began
 * (`baton_drain_runs_total{outcome}`); the keys of the worker's drain tally.
 */
export const DRAIN_OUTCOMES = [
  "completed",
  "handed-off",
  "to-compensate",
  "compensated",
  "failed-to-checkpoint",
  "failed",
  "sleeping",
  "lease-lost",
] as const;
export type DrainOutcome = (typeof DRAIN_OUTCOMES)[number];

/**
 * How a whole shutdown ended (`baton_shutdowns_total{outcome}`).
 * - `clean`: every phase ran and finished in time (exit code 0).
 * - `unclean`: a phase timed out or a handler failed (exit code 1).
 * - `escalated`: a second signal skipped to finalize.
 * - `watchdog`: it did not finish in time and the watchdog ended it.
 */
export const SHUTDOWN_OUTCOMES = ["clean", "unclean", "escalated", "watchdog"] as const;
export type ShutdownOutcome = (typeof SHUTDOWN_OUTCOMES)[number];

/**
 * How one execution of a run on one worker (one claim, one fence) ended
 * (`baton_run_executions_total{outcome}`); the worker's `RunOutcome` kinds.
 */
export const EXECUTION_OUTCOMES = [
  "completed",
  "failed",
  "compensated",
  "handed-off",
  "to-compensate",
  "sleeping",
  "lease-lost",
] as const;
export type ExecutionOutcome = (typeof EXECUTION_OUTCOMES)[number];
