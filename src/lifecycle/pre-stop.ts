import type { BudgetPlan } from "./budget.js";
import type { PhaseWork } from "./run-phase.js";

/**
 * The work of the `preStop` phase: a plain wait of `preStopDelayMs`, so that load
 * balancers see readiness go false before intake stops. Interrupted by escalation.
 */
export function preStopWork(plan: BudgetPlan): PhaseWork {
  const delay = plan.phases.find((p) => p.name === "preStop")?.budgetMs ?? 0;
  if (delay <= 0) return { handlers: [] };
  return {
    handlers: [
      {
        name: "preStop delay",
        handler: (ctx) => sleep(Math.min(delay, ctx.remainingMs()), ctx.signal),
      },
    ],
  };
}

/** Resolves after `ms`; on abort, clears its timer and never resolves (the phase has moved on). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => clearTimeout(timer);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
