import type { Logger } from "pino";
import type { ClaimedRun, Lease, Store } from "../store/store.js";
import { ValidationError, serializeError, type SerializedError } from "../workflow/errors.js";
import { RunHalted, type Halt } from "../workflow/halt.js";
import { resolveRetryPolicy } from "../workflow/retry.js";
import { RunContext } from "../workflow/run-context.js";
import { runCompensations } from "../workflow/compensation.js";
import { decodeJson, encodeJson } from "../workflow/serialize.js";
import type { Workflow } from "../workflow/types.js";
import type { ActiveRun } from "./active-run.js";
import type { StepDurations } from "./step-durations.js";
import type { BatonMetrics, RecoveryTimer } from "../metrics/baton-metrics.js";

/** How one execution of a run on this worker ended. */
export type RunOutcome =
  | { kind: "completed" }
  | { kind: "failed"; error: unknown }
  | { kind: "compensated" }
  | { kind: "handed-off" }
  /** Handed over for another worker to compensate (shutdown in mode `compensate`). */
  | { kind: "to-compensate" }
  | { kind: "sleeping"; delayMs: number }
  | { kind: "lease-lost" };

export type ExecuteRunDeps = {
  store: Store;
  workflow: Workflow;
  run: ClaimedRun;
  active: ActiveRun;
  log: Logger;
  maxPayloadBytes: number;
  durations: StepDurations;
  metrics: BatonMetrics;
  /** The recovery clock of a run resumed after a handoff or a lease expiry. */
  recovery?: RecoveryTimer;
};

/**
 * Executes a claimed run. A run that is going forward replays its journal through the
 * workflow function and runs what is new; if it fails and completed steps have
 * compensations, it turns `compensating` and undoes them. A run claimed as `compensating`
 * (cancelled, abandoned, shut down in mode compensate) is replayed only to collect the
 * compensations of its completed steps, which then run in reverse order. Every ending is a
 * fenced write; a run whose lease was lost writes nothing more.
 */
export async function executeRun(deps: ExecuteRunDeps): Promise<RunOutcome> {
  const { store, workflow, run, active } = deps;
  const lease = active.lease;
  const log = deps.log.child({ runId: run.id, workflow: workflow.name, fence: lease.fence });
  const compensating = run.status === "compensating";
  const ctx = new RunContext({
    store,
    lease,
    journal: await (run.journal ?? store.loadJournal(run.id)),
    control: active,
    log,
    maxPayloadBytes: deps.maxPayloadBytes,
    workflowRetry: resolveRetryPolicy(workflow.retry, `workflow "${workflow.name}"`),
    workflowName: workflow.name,
    durations: deps.durations,
    metrics: deps.metrics,
    recovery: deps.recovery,
    mode: compensating ? "collect" : "forward",
  });

  let output: unknown;
  let thrown: { error: unknown } | undefined;
  try {
    output = await workflow.fn(ctx, decodeJson(run.input));
  } catch (error) {
    thrown = { error };
  }
  const halt = ctx.halted ?? (thrown?.error instanceof RunHalted ? thrown.error.halt : undefined);

  if (compensating) {
    if (halt && halt.kind !== "collected") return afterHalt(deps, halt, log);
    ctx.guard.endCollection();
    const reason = run.error === null ? undefined : (JSON.parse(run.error) as SerializedError);
    return compensate(deps, ctx, reason, log);
  }
  if (halt) return afterHalt(deps, halt, log);
  if (thrown) {
    const reason = serializeError(thrown.error);
    if (ctx.undo.length === 0) {
      log.info({ err: thrown.error }, "run failed");
      return finish(deps, store.failRun(lease, JSON.stringify(reason)), {
        kind: "failed",
        error: thrown.error,
      });
    }
    log.info({ err: thrown.error, compensations: ctx.undo.length }, "run failed; compensating");
    if (!(await store.beginCompensation(lease, JSON.stringify(reason))))
      return { kind: "lease-lost" };
    return compensate(deps, ctx, reason, log);
  }

  let encoded: string | null;
  try {
    encoded = encodeJson(output, `output of run ${run.id}`, deps.maxPayloadBytes);
  } catch (error) {
    const refused =
      error instanceof ValidationError
        ? error
        : new ValidationError(String(error), { cause: error });
    return finish(deps, store.failRun(lease, JSON.stringify(serializeError(refused))), {
      kind: "failed",
      error: refused,
    });
  }
  return finish(deps, store.completeRun(lease, encoded), { kind: "completed" });
}

/** Undoes the completed steps in reverse order, then ends the run `compensated` (or parks it). */
async function compensate(
  deps: ExecuteRunDeps,
  ctx: RunContext,
  reason: SerializedError | undefined,
  log: Logger,
): Promise<RunOutcome> {
  const lease = deps.active.lease;
  try {
    await runCompensations(ctx.guard, ctx.undo, reason);
  } catch (error) {
    const halt = ctx.halted ?? (error instanceof RunHalted ? error.halt : undefined);
    if (halt) return afterHalt(deps, halt, log);
    log.error({ err: error }, "compensation failed; run parked");
    return finish(deps, deps.store.failRun(lease, JSON.stringify(serializeError(error))), {
      kind: "failed",
      error,
    });
  }
  return finish(deps, deps.store.markCompensated(lease), { kind: "compensated" });
}

/** What a halted run leaves behind: a handoff, a sleep, a parked run, or nothing. */
async function afterHalt(deps: ExecuteRunDeps, halt: Halt, log: Logger): Promise<RunOutcome> {
  const { store, workflow, run, active } = deps;
  const lease = active.lease;
  switch (halt.kind) {
    case "lease-lost":
      log.warn({ err: halt.error }, "run stopped on this worker: lease lost");
      await recordLeaseLost(store, lease, halt.error.message, log);
      return { kind: "lease-lost" };
    case "handoff":
      // A run being compensated stays so; mode `compensate` marks the run for it.
      if (run.status === "compensating" || workflow.onShutdown === "compensate") {
        return finish(deps, store.releaseRun(lease, "compensate"), { kind: "to-compensate" });
      }
      return finish(deps, store.releaseRun(lease, "handoff"), { kind: "handed-off" }).then((o) => {
        if (o.kind === "handed-off") deps.metrics.handedOff(halt.reason);
        return o;
      });
    case "sleep":
      return finish(deps, store.releaseRun(lease, "sleep", halt.delayMs), {
        kind: "sleeping",
        delayMs: halt.delayMs,
      });
    case "park":
      log.error({ err: halt.error }, "run parked: non-determinism");
      return finish(deps, store.failRun(lease, JSON.stringify(serializeError(halt.error))), {
        kind: "failed",
        error: halt.error,
      });
    case "store-failed": {
      // The write's outcome is unknown; the journal says what is done either way. A fenced
      // release lets any worker resume the run now; if the store is still failing, the
      // lease runs out and the run is taken over.
      log.warn({ err: halt.error }, "journal write failed in the store; releasing the run");
      const reason = run.status === "compensating" ? "compensate" : "handoff";
      const released = await store.releaseRun(lease, reason).catch((error: unknown) => {
        log.warn({ err: error }, "release failed too; the run is left to its lease");
        return false;
      });
      if (!released) return { kind: "lease-lost" };
      deps.metrics.handedOff("store-error");
      return { kind: "handed-off" };
    }
    case "collected":
      return { kind: "lease-lost" }; // never reached: collection is handled by the caller
  }
}

/** Leaves a trace on the run's timeline; best effort, since the store may be what failed. */
async function recordLeaseLost(
  store: Store,
  lease: Lease,
  detail: string,
  log: Logger,
): Promise<void> {
  try {
    await store.appendEvent({
      runId: lease.runId,
      kind: "lease-lost",
      workerId: lease.workerId,
      fence: lease.fence,
      detail,
    });
  } catch (error) {
    log.warn({ err: error, runId: lease.runId }, "could not record the lost lease");
  }
}

async function finish(
  deps: ExecuteRunDeps,
  write: Promise<boolean>,
  outcome: RunOutcome,
): Promise<RunOutcome> {
  if (await write) return outcome;
  deps.metrics.staleWriteRejected();
  return { kind: "lease-lost" };
}
