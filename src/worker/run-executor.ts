import type { Logger } from "pino";
import type { ClaimedRun, Store } from "../store/store.js";
import { ValidationError, serializeError } from "../workflow/errors.js";
import { RunHalted } from "../workflow/halt.js";
import { resolveRetryPolicy } from "../workflow/retry.js";
import { RunContext } from "../workflow/run-context.js";
import { decodeJson, encodeJson } from "../workflow/serialize.js";
import type { Workflow } from "../workflow/types.js";
import type { ActiveRun } from "./active-run.js";
import type { StepDurations } from "./step-durations.js";

/** How one execution of a run on this worker ended. */
export type RunOutcome =
  | { kind: "completed" }
  | { kind: "failed"; error: unknown }
  | { kind: "handed-off" }
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
};

/**
 * Executes a claimed run: replays its journal through the workflow function, runs what
 * is new, then records how the run ended (completed, failed, handed off, asleep) with a
 * fenced write. A run whose lease was lost writes nothing more.
 */
export async function executeRun(deps: ExecuteRunDeps): Promise<RunOutcome> {
  const { store, workflow, run, active } = deps;
  const lease = active.lease;
  const log = deps.log.child({ runId: run.id, workflow: workflow.name, fence: lease.fence });
  const journal = await store.loadJournal(run.id);
  const ctx = new RunContext({
    store,
    lease,
    journal,
    control: active,
    log,
    maxPayloadBytes: deps.maxPayloadBytes,
    workflowRetry: resolveRetryPolicy(workflow.retry, `workflow "${workflow.name}"`),
    workflowName: workflow.name,
    durations: deps.durations,
  });

  let output: unknown;
  let thrown: { error: unknown } | undefined;
  try {
    output = await workflow.fn(ctx, decodeJson(run.input));
  } catch (error) {
    thrown = { error };
  }

  const halt = ctx.halted ?? (thrown?.error instanceof RunHalted ? thrown.error.halt : undefined);
  if (halt) {
    switch (halt.kind) {
      case "lease-lost":
        log.warn({ err: halt.error }, "run stopped on this worker: lease lost");
        await recordLeaseLost(deps, halt.error.message);
        return { kind: "lease-lost" };
      case "handoff":
        return (await store.releaseRun(lease, "handoff"))
          ? { kind: "handed-off" }
          : { kind: "lease-lost" };
      case "sleep":
        return (await store.releaseRun(lease, "sleep", halt.delayMs))
          ? { kind: "sleeping", delayMs: halt.delayMs }
          : { kind: "lease-lost" };
      case "park":
        log.error({ err: halt.error }, "run parked: non-determinism");
        return finish(store.failRun(lease, JSON.stringify(serializeError(halt.error))), {
          kind: "failed",
          error: halt.error,
        });
    }
  }

  if (thrown) {
    log.info({ err: thrown.error }, "run failed");
    return finish(store.failRun(lease, JSON.stringify(serializeError(thrown.error))), {
      kind: "failed",
      error: thrown.error,
    });
  }

  let encoded: string | null;
  try {
    encoded = encodeJson(output, `output of run ${run.id}`, deps.maxPayloadBytes);
  } catch (error) {
    const refused =
      error instanceof ValidationError
        ? error
        : new ValidationError(String(error), { cause: error });
    return finish(store.failRun(lease, JSON.stringify(serializeError(refused))), {
      kind: "failed",
      error: refused,
    });
  }
  return finish(store.completeRun(lease, encoded), { kind: "completed" });
}

/** Leaves a trace on the run's timeline; best effort, since the store may be what failed. */
async function recordLeaseLost(deps: ExecuteRunDeps, detail: string): Promise<void> {
  const { runId, fence, workerId } = deps.active.lease;
  try {
    await deps.store.appendEvent({ runId, kind: "lease-lost", workerId, fence, detail });
  } catch (error) {
    deps.log.warn({ err: error, runId }, "could not record the lost lease");
  }
}

async function finish(write: Promise<boolean>, outcome: RunOutcome): Promise<RunOutcome> {
  return (await write) ? outcome : { kind: "lease-lost" };
}
