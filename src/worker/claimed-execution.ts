import type { Logger } from "pino";
import type { BatonMetrics, RecoveryTimer } from "../metrics/baton-metrics.js";
import type { ClaimedRun, Store } from "../store/store.js";
import { setOutcome, withRunSpan } from "../telemetry/tracing.js";
import { LeaseLostError } from "../workflow/errors.js";
import type { Workflow } from "../workflow/types.js";
import type { ActiveRun } from "./active-run.js";
import { executeRun, type RunOutcome } from "./run-executor.js";
import type { StepDurations } from "./step-durations.js";

export type ClaimedExecutionDeps = {
  store: Store;
  /** Undefined when this worker has no workflow of the run's name. */
  workflow: Workflow | undefined;
  run: ClaimedRun;
  active: ActiveRun;
  workerId: string;
  log: Logger;
  maxPayloadBytes: number;
  durations: StepDurations;
  metrics: BatonMetrics;
};

/**
 * One execution of a claimed run on this worker: in a span, with the recovery clock of a
 * resumed run. Never rejects: a failure of the runtime itself (the store failing outside a
 * journal write, a workflow this worker lacks) stops the run here, and its lease runs out
 * for another worker to take it over.
 */
export async function executeClaimedRun(deps: ClaimedExecutionDeps): Promise<RunOutcome> {
  const { run, active, workflow, metrics } = deps;
  try {
    if (!workflow) throw new Error(`no workflow "${run.workflow}" on this worker`);
    const recovery: RecoveryTimer | undefined =
      run.resumedFrom &&
      metrics.startRecovery(run.resumedFrom.cause, Date.now() - run.resumedFrom.msAgo);
    const outcome = await withRunSpan(
      {
        runId: run.id,
        workflow: run.workflow,
        workflowVersion: run.version,
        fence: run.fence,
        workerId: deps.workerId,
        takeover: run.takeover,
        interruptions: run.interruptions,
      },
      async (span) => {
        const ended = await executeRun({ ...deps, workflow, recovery });
        setOutcome(span, ended.kind, ended.kind === "failed" ? ended.error : undefined);
        return ended;
      },
    );
    // A run resumed by replay alone, which ended without starting a step.
    if (ended(outcome)) recovery?.stepStarted();
    return outcome;
  } catch (error) {
    deps.log.error(
      { err: error, runId: run.id },
      "run execution failed in the runtime; leaving it to lease expiry",
    );
    active.loseLease(new LeaseLostError(`run ${run.id}: ${String(error)}`, { cause: error }));
    return { kind: "lease-lost" };
  }
}

function ended(outcome: RunOutcome): boolean {
  return (
    outcome.kind === "completed" || outcome.kind === "failed" || outcome.kind === "compensated"
  );
}
