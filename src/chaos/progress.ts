import type { TerminationKind } from "./evidence.js";

export type ChaosPhase = "starting" | "chaos" | "settling" | "stopping" | "checking";

/** A live view of a chaos run, about once a second. */
export type ChaosProgress = {
  phase: ChaosPhase;
  elapsedMs: number;
  /** Runs submitted so far, of `runs`. */
  submitted: number;
  runs: number;
  /** Runs that have ended (any terminal status). */
  ended: number;
  terminations: Record<TerminationKind, number>;
  /** Worker processes running now (not stopped, not shutting down). */
  workersUp: number;
};

/** One line: `[chaos 12.3s] chaos: 340/2000 submitted, 280 ended; 4 workers up; kills k8s 2, sigkill 1, stop 1, rolling 0`. */
export function formatProgress(p: ChaosProgress): string {
  const t = p.terminations;
  return (
    `[chaos ${(p.elapsedMs / 1000).toFixed(1)}s] ${p.phase}: ${p.submitted}/${p.runs} submitted, ${p.ended} ended; ` +
    `${p.workersUp} workers up; terminations k8s ${t.k8s}, sigkill ${t.sigkill}, stop ${t.stop}, rolling ${t.rolling}`
  );
}
