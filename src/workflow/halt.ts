import type { LeaseLostError, NonDeterminismError } from "./errors.js";
import type { HandoffReason } from "../metrics/labels.js";

/**
 * Why a run stopped before its workflow function finished. A halt is not a failure of
 * the run (except `park`); the executor acts on it after the function settles.
 * - `handoff`: the worker is shutting down; release the run at this step boundary.
 * - `sleep`: a durable timer; release the run until it is due.
 * - `lease-lost`: another owner, a cancel, or self-fencing; write nothing more.
 * - `park`: the code no longer matches the journal; fail the run, keep the journal.
 * - `collected`: replaying to collect compensations reached the first unrecorded step.
 */
export type Halt =
  | { kind: "handoff"; reason: HandoffReason }
  | { kind: "collected" }
  | { kind: "sleep"; delayMs: number }
  | { kind: "lease-lost"; error: LeaseLostError }
  | { kind: "park"; error: NonDeterminismError };

/**
 * Thrown through the workflow function to unwind it when the run halts. User code that
 * catches it cannot resume the run: every later `ctx` call throws it again.
 */
export class RunHalted extends Error {
  constructor(readonly halt: Halt) {
    super(`run halted: ${halt.kind}`);
    this.name = "RunHalted";
  }
}
