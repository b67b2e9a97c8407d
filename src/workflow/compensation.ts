import { COMPENSATION_SEQ_BASE } from "../store/store.js";
import { runAttempts } from "./attempts.js";
import { CompensationFailedError, type SerializedError } from "./errors.js";
import { resolveRetryPolicy } from "./retry.js";
import type { UndoEntry } from "./run-context.js";
import type { RunGuard } from "./run-guard.js";

/**
 * Runs the compensations of a run's completed steps in reverse order. Each is journaled at
 * `COMPENSATION_SEQ_BASE + seq` of the step it undoes, with its own idempotency key
 * (`<step key>:compensate`) and an intent written before each attempt, so after a crash
 * the completed ones are skipped and the one in flight runs again with the same key.
 * A compensation that fails after its retries throws a CompensationFailedError naming it
 * and what is left: the run is parked for a person, nothing is dropped silently.
 */
export async function runCompensations(
  guard: RunGuard,
  undo: readonly UndoEntry[],
  reason: SerializedError | undefined,
): Promise<void> {
  const entries = [...undo].reverse();
  for (const [index, entry] of entries.entries()) {
    const seq = COMPENSATION_SEQ_BASE + entry.seq;
    const name = `compensate:${entry.name}`;
    const recorded = guard.recorded(seq, name, "compensation");
    if (recorded?.status === "completed") continue;
    if (recorded?.status === "failed")
      throw parked(guard.runId, entry, entries.slice(index + 1), recorded.error);
    guard.beforeNewWork(name);
    const key = `${entry.idempotencyKey}:compensate`;
    try {
      await runAttempts(guard, {
        seq,
        name,
        kind: "compensation",
        policy: entry.retry
          ? resolveRetryPolicy(entry.retry, `compensation of "${entry.name}"`)
          : guard.deps.workflowRetry,
        recorded,
        idempotencyKey: key,
        extra: {
          idempotencyKey: key,
          fence: guard.deps.lease.fence,
          reason: reason && { name: reason.name, message: reason.message },
        },
        invoke: (c) => entry.compensate(c as never, entry.result),
      });
      guard.deps.metrics.compensationFinished("completed");
    } catch (error) {
      if (guard.halted) throw error;
      guard.deps.metrics.compensationFinished("failed");
      throw parked(
        guard.runId,
        entry,
        entries.slice(index + 1),
        JSON.stringify({ message: (error as Error)?.message }),
        error,
      );
    }
  }
}

function parked(
  runId: string,
  failed: UndoEntry,
  left: readonly UndoEntry[],
  stored: string | null,
  cause?: unknown,
) {
  const message = (JSON.parse(stored ?? "{}") as { message?: string }).message ?? "unknown error";
  const rest = left.length === 0 ? "none" : left.map((e) => `"${e.name}"`).join(", ");
  return new CompensationFailedError(
    `run ${runId}: the compensation of step "${failed.name}" failed after its retries (${message}). ` +
      `The run is parked with its journal: the compensations of the steps after it have run; still to run: ${rest}. ` +
      `Fix the cause, then undo the rest by hand or from a new run.`,
    { cause },
  );
}
