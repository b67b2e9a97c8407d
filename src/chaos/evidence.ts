/**
 * What the chaos harness gathers at the end of a run, from the three witnesses that do not
 * trust each other: the store (runs, journals, events), the ledger (balances and every
 * request it was asked) and the execution log (what each process started, and when), plus
 * the harness's own record of what it did to the workers. Plain data, so the checks are
 * pure functions that a test can feed bad data.
 */
import type { RunEvent, RunStatus, JournalKind, JournalStatus } from "../store/store.js";
import type { ExecLine } from "./exec-log.js";
import type { LedgerSnapshot } from "./ledger.js";

/** A run the harness submitted, and what it should become. */
export type SubmittedRun = {
  id: string;
  from: string;
  to: string;
  amount: number;
  /** Its report is rejected for good: it must end `compensated`; otherwise `completed`. */
  fail: boolean;
};

export type StepEvidence = {
  seq: number;
  name: string;
  kind: JournalKind;
  status: JournalStatus;
  attempts: number;
  fence: number;
  workerId: string;
  idempotencyKey: string | null;
  updatedAt: number;
};

export type EventEvidence = Pick<RunEvent, "kind" | "at" | "workerId" | "fence">;

export type RunEvidence = {
  id: string;
  status: RunStatus;
  /** The message of the run's error, when it has one. */
  error?: string;
  interruptions: number;
  steps: StepEvidence[];
  /** In the store's order. */
  events: EventEvidence[];
};

/**
 * How a worker was ended. `k8s`: POST /drain (the preStop hook), SIGTERM, SIGKILL at the
 * grace period; `rolling`: the same, one worker after another, each after its replacement
 * was ready; `teardown`: the same, at the end of the run; `sigkill`: SIGKILL; `stop`:
 * SIGSTOP past the lease, then SIGCONT.
 */
export type TerminationKind = "k8s" | "rolling" | "teardown" | "sigkill" | "stop";

export const GRACEFUL_KINDS: readonly TerminationKind[] = ["k8s", "rolling", "teardown"];

export type TerminationRecord = {
  kind: TerminationKind;
  workerId: string;
  pid: number;
  /** The preStop hook (graceful kinds), the SIGKILL, or the SIGSTOP. */
  at: number;
  /** Graceful kinds: when the worker answered POST /drain. */
  drainAckAt?: number;
  sigtermAt?: number;
  /** `stop`: the SIGCONT. */
  continuedAt?: number;
  /** `stop`: runs the worker held when frozen, and when the harness saw one taken over. */
  runsHeld?: number;
  takeoverSeenAt?: number;
  exitAt?: number;
  exitCode?: number | string;
  /** Graceful kinds: the worker was still alive at the end of the grace period. */
  killedAtGrace?: boolean;
  /** Graceful kinds: what the worker's shutdown report says went wrong (phases timed out, errors). */
  shutdownProblems?: string[];
};

export type WorkerEvidence = { workerId: string; pid: number };

export type ChaosEvidence = {
  submitted: SubmittedRun[];
  runs: RunEvidence[];
  ledger: LedgerSnapshot;
  exec: ExecLine[];
  workers: WorkerEvidence[];
  terminations: TerminationRecord[];
  graceMs: number;
  leaseMs: number;
};

/** The run's claims (`claimed` and `takeover` events), in the store's order. */
export function claimsOf(run: RunEvidence): EventEvidence[] {
  return run.events.filter((e) => e.kind === "claimed" || e.kind === "takeover");
}

/**
 * When the run, held by `workerId` at `at` (its latest claim before then), was taken over
 * by another worker after `at`; undefined if it was not.
 */
export function takenOverAt(run: RunEvidence, workerId: string, at: number): number | undefined {
  const claims = claimsOf(run);
  const found = claims.find((c, i) => {
    const previous = claims[i - 1];
    return (
      c.kind === "takeover" && c.at > at && previous?.workerId === workerId && previous.at <= at
    );
  });
  return found?.at;
}
