import type { LeaseLostError, NonDeterminismError } from "./errors.js";
import type { HandoffReason } from "../metrics/labels.js";

/**
 * Why a run stopped before its workflow function finished. A halt is not a failure of
 * the run (except `park`); the executor acts on it after the function settles.
 * - `handoff`: the worker is shutting down; release the run at this step boundary.
 * - `sleep`: a durable timer; release the run until it is due.
 * - `lease-lost`: another owner, a cancel, or self-fencing; write nothing more.
 * - `park`: the code no longer matches the journal; fail the run, keep the journal.
 * - `store-failed`: a journal write threw (the database was busy or unreachable). The
 *   run did not fail: it is released for another attempt, or left to its lease.
 * - `collected`: replaying to collect compensations reached the first unrecorded step.
 */
export type Halt =
  | { kind: "handoff"; reason: HandoffReason }
  | { kind: "collected" }
  | { kind: "sleep"; delayMs: number }
  | { kind: "lease-lost"; error: LeaseLostError }
  | { kind: "park"; error: NonDeterminismError }
  | { kind: "store-failed"; error: unknown };

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
