import type { ShutdownReport as LifecycleReport } from "../lifecycle/types.js";
import type { RunOutcome } from "./run-executor.js";

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

const TALLY_OF: Record<RunOutcome["kind"], keyof DrainTally> = {
  completed: "completed",
  failed: "failed",
  compensated: "compensated",
  "handed-off": "handedOff",
  "to-compensate": "toCompensate",
  sleeping: "sleeping",
  "lease-lost": "leaseLost",
};

/** Counts how a run's execution ended, during a drain. */
export function countOutcome(tally: DrainTally, outcome: RunOutcome["kind"]): void {
  tally[TALLY_OF[outcome]] += 1;
}

/**
 * The report a worker stores at finalize (the store closes after it): when each of its
 * phases began, as durations, what became of its runs, and the exit code so far. The
 * full report, with the close phase, is the one logged at exit.
 */
export function storedShutdownReport(
  workerId: string,
  phaseStarts: Readonly<Record<string, number>>,
  tally: DrainTally,
  now = Date.now(),
) {
  const span = (from: string, to: string | undefined) => {
    const start = phaseStarts[from];
    if (start === undefined) return undefined;
    return (to === undefined ? now : (phaseStarts[to] ?? now)) - start;
  };
  return {
    workerId,
    startedAt: phaseStarts.notReady,
    phasesMs: {
      notReadyAndPreStop: span("notReady", "stopIntake"),
      stopIntake: span("stopIntake", "drain"),
      drain: span("drain", "finalize"),
      finalize: span("finalize", undefined),
    },
    runs: tally,
    exitCode: tally.failedToCheckpoint > 0 ? 1 : 0,
  };
}
