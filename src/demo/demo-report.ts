import type { RunDetails } from "../run-view.js";
import type { ExecutionLogLine } from "./agent-workflows.js";

export type DemoReport = {
  runs: number;
  completed: number;
  notCompleted: string[];
  /** Step executions that began after that step's result was committed: must be 0. */
  reexecutedAfterCompletion: Array<{ run: string; step: string }>;
  /** Runs that a worker other than the killed one took over after the kill. */
  resumedElsewhere: number;
  /** Kill → first step started on another worker, per resumed run, in ms. */
  resumeMs: number[];
  /** Chunks of the long step read again after the crash, against those kept by saved progress. */
  chunksRedone: number;
  chunksKept: number;
};

/**
 * Checks the outside world's record of what ran (the execution log) against the journal.
 * A step start later than the commit of that step's result means a completed step ran
 * again — the one thing Baton promises never happens.
 */
export function analyseDemo(
  runs: readonly RunDetails[],
  log: readonly ExecutionLogLine[],
  killed: { pid: number; at: number },
): DemoReport {
  const committedAt = new Map<string, number>();
  for (const run of runs) {
    for (const step of run.steps)
      if (step.status === "completed") committedAt.set(`${run.id}/${step.name}`, step.updatedAt);
  }
  const starts = log.filter((line) => line.chunk === undefined);
  const reexecutedAfterCompletion = starts
    .filter((line) => {
      const at = committedAt.get(`${line.run}/${line.step}`);
      return at !== undefined && line.at > at;
    })
    .map(({ run, step }) => ({ run, step }));

  const resumeMs: number[] = [];
  for (const run of runs) {
    if (!run.events.some((e) => e.kind === "takeover" && e.at >= killed.at)) continue;
    const next = starts.find(
      (line) => line.run === run.id && line.pid !== killed.pid && line.at >= killed.at,
    );
    if (next) resumeMs.push(next.at - killed.at);
  }

  let chunksRedone = 0;
  let chunksKept = 0;
  const chunksByRun = new Map<string, ExecutionLogLine[]>();
  for (const line of log) {
    if (line.chunk === undefined) continue;
    chunksByRun.set(line.run, [...(chunksByRun.get(line.run) ?? []), line]);
  }
  for (const lines of chunksByRun.values()) {
    const killedChunks = new Set(lines.filter((l) => l.pid === killed.pid).map((l) => l.chunk));
    const later = lines.filter((l) => l.pid !== killed.pid && l.at >= killed.at);
    if (killedChunks.size === 0 || later.length === 0) continue;
    chunksRedone += later.filter((l) => killedChunks.has(l.chunk)).length;
    chunksKept += [...killedChunks].filter((c) => !later.some((l) => l.chunk === c)).length;
  }

  const notCompleted = runs
    .filter((r) => r.status !== "completed")
    .map((r) => `${r.id} (${r.status})`);
  return {
    runs: runs.length,
    completed: runs.length - notCompleted.length,
    notCompleted,
    reexecutedAfterCompletion,
    resumedElsewhere: resumeMs.length,
    resumeMs: resumeMs.sort((a, b) => a - b),
    chunksRedone,
    chunksKept,
  };
}

export function formatDemoReport(report: DemoReport, leaseMs: number): string {
  const pct = (q: number) =>
    report.resumeMs[Math.min(report.resumeMs.length - 1, Math.floor(q * report.resumeMs.length))] ??
    0;
  const ok = (good: boolean) => (good ? "ok " : "FAIL");
  return [
    "",
    "Baton demo report",
    `  ${ok(report.completed === report.runs)} runs completed:                     ${report.completed}/${report.runs}`,
    `  ${ok(report.reexecutedAfterCompletion.length === 0)} steps re-executed after completion:   ${report.reexecutedAfterCompletion.length}`,
    `  ok  runs resumed on another worker:       ${report.resumedElsewhere}`,
    `  ok  time to resume after SIGKILL:         p50 ${pct(0.5)} ms, max ${report.resumeMs.at(-1) ?? 0} ms (lease ${leaseMs} ms)`,
    `  ok  long-step chunks kept by saved progress: ${report.chunksKept} (redone: ${report.chunksRedone})`,
    ...report.notCompleted.map((r) => `       not completed: ${r}`),
    ...report.reexecutedAfterCompletion.map((r) => `       re-executed: ${r.run} ${r.step}`),
    "",
  ].join("\n");
}
