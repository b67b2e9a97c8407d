import type { ShutdownReport as LifecycleReport } from "../lifecycle/types.js";

/** What became of the runs a worker held when it began to shut down. */
export type DrainTally = {
  /** Runs executing when shutdown began. */
  inFlight: number;
  /** Finished during the drain. */
  completed: number;
  /** Handed off at a step boundary, for another worker to resume at once. */
  handedOff: number;
  /** Handed over for another worker to compensate (mode `compensate`, or a compensation in progress). */
  toCompensate: number;
  /** Compensated during the drain. */
  compensated: number;
  /** Still in a step at finalize (the step ignored its abort): released anyway, fenced. */
  failedToCheckpoint: number;
  /** Failed during the drain (by their own errors, not by the shutdown). */
  failed: number;
  /** Went to sleep (a durable timer) during the drain. */
  sleeping: number;
  /** Lost to another owner or a cancel during the drain. */
  leaseLost: number;
};

/** `worker.stop()`'s answer: the lifecycle's report, plus the worker and its runs. */
export type ShutdownReport = LifecycleReport & { workerId: string; runs: DrainTally };

export function emptyTally(): DrainTally {
  return {
    inFlight: 0,
    completed: 0,
    handedOff: 0,
    toCompensate: 0,
    compensated: 0,
    failedToCheckpoint: 0,
    failed: 0,
    sleeping: 0,
    leaseLost: 0,
  };
}

/**
 * The step deadline inside a drain phase of `drainBudgetMs` ending at `drainDeadline`:
 * early enough that an aborted step can save progress and its run be handed off before
 * the phase ends (a fifth of the drain budget, at most one second, before its end).
 */
export function stepDeadlineWithin(drainDeadline: number, drainBudgetMs: number): number {
  return drainDeadline - Math.min(1_000, Math.floor(drainBudgetMs / 5));
}
