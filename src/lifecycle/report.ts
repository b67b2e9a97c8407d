import type { PhaseName, PhaseReport, ShutdownReport } from "./types.js";

/** What a shutdown report is built from. */
export interface ReportInput {
  readonly reason: string;
  readonly startedAt: number;
  readonly phases: readonly PhaseReport[];
  readonly escalated: boolean;
  readonly watchdog: boolean;
  readonly details: Record<string, unknown>;
}

/**
 * Builds the report. The exit code is 0 only for a clean run: no escalation, no
 * watchdog, and every phase finished in time without errors.
 */
export function buildReport(input: ReportInput): ShutdownReport {
  const clean =
    !input.escalated &&
    !input.watchdog &&
    input.phases.every((p) => !p.timedOut && !p.interrupted && !p.skipped && p.errors.length === 0);
  return {
    reason: input.reason,
    startedAt: input.startedAt,
    phases: [...input.phases],
    durationMs: Date.now() - input.startedAt,
    escalated: input.escalated,
    watchdog: input.watchdog,
    exitCode: clean ? 0 : 1,
    details: { ...input.details },
  };
}

/** The report of the phase the watchdog cut short (its handlers' fate is unknown). */
export function watchdogPhase(
  phase: PhaseName,
  startedAt: number,
  watchdogMs: number,
): PhaseReport {
  return {
    phase,
    startedAt,
    durationMs: Date.now() - startedAt,
    timedOut: false,
    interrupted: true,
    skipped: false,
    errors: [`watchdog fired ${watchdogMs} ms into shutdown`],
    handlers: [],
  };
}

/** The report as one JSON line: `{"msg":"shutdown report","report":{...}}`. */
export function reportLine(report: ShutdownReport): string {
  const replacer = (_key: string, value: unknown) =>
    typeof value === "bigint" ? value.toString() : value;
  try {
    return JSON.stringify({ msg: "shutdown report", report }, replacer);
  } catch {
    // A detail that cannot be serialised (a cycle) must not cost the whole report.
    const details = Object.fromEntries(
      Object.keys(report.details).map((k) => [k, "[unserializable]"]),
    );
    return JSON.stringify({ msg: "shutdown report", report: { ...report, details } }, replacer);
  }
}
