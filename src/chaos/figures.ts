/**
 * The figures of a chaos run, computed from the evidence: how fast runs resumed after a
 * handoff, a crash and a stall; how long graceful exits took; how much model work was done
 * twice. Pure, like the checks.
 */
import { GRACEFUL_KINDS, takenOverAt, type ChaosEvidence, type RunEvidence } from "./evidence.js";

/** A distribution of durations, in ms (zeros when there are none). */
export type Distribution = { count: number; p50: number; p99: number; max: number };

/** Nearest-rank percentiles. */
export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? 0;
  return { count: sorted.length, p50: rank(0.5), p99: rank(0.99), max: sorted.at(-1) ?? 0 };
}

/**
 * `handoff`: from a handoff event to the run's next sign of life on another worker;
 * `crash`: from a SIGKILL to the same, for each run the dead worker held; `stall`: from a
 * SIGSTOP to the same, for each run taken over from the stopped worker.
 */
export type RecoveryCause = "handoff" | "crash" | "stall";

const LIFE_EVENTS = new Set([
  "sleeping",
  "completed",
  "compensated",
  "compensating",
  "failed",
  "handoff",
]);

/** The first sign of life of `run` at or after `after`, from a worker other than `not`. */
function resumedAt(
  ev: ChaosEvidence,
  linesByRun: Map<string, ChaosEvidence["exec"]>,
  run: RunEvidence,
  after: number,
  not: string,
): number | undefined {
  const pid = ev.workers.find((w) => w.workerId === not)?.pid;
  const line = (linesByRun.get(run.id) ?? []).find((l) => l.at >= after && l.pid !== pid);
  const event = run.events.find(
    (e) => LIFE_EVENTS.has(e.kind) && e.at >= after && e.workerId !== null && e.workerId !== not,
  );
  const candidates = [line?.at, event?.at].filter((t): t is number => t !== undefined);
  return candidates.length ? Math.min(...candidates) : undefined;
}

export function recoveryTimes(ev: ChaosEvidence): Record<RecoveryCause, number[]> {
  const linesByRun = new Map<string, ChaosEvidence["exec"]>();
  for (const line of [...ev.exec].sort((a, b) => a.at - b.at)) {
    const list = linesByRun.get(line.run);
    if (list) list.push(line);
    else linesByRun.set(line.run, [line]);
  }
  const times: Record<RecoveryCause, number[]> = { handoff: [], crash: [], stall: [] };
  for (const run of ev.runs) {
    for (const e of run.events) {
      if (e.kind !== "handoff" || e.workerId === null) continue;
      const at = resumedAt(ev, linesByRun, run, e.at, e.workerId);
      if (at !== undefined) times.handoff.push(at - e.at);
    }
  }
  for (const t of ev.terminations) {
    if (t.kind !== "sigkill" && t.kind !== "stop") continue;
    for (const run of ev.runs) {
      if (takenOverAt(run, t.workerId, t.at) === undefined) continue;
      const at = resumedAt(ev, linesByRun, run, t.at, t.workerId);
      if (at !== undefined) times[t.kind === "sigkill" ? "crash" : "stall"].push(at - t.at);
    }
  }
  return times;
}

/** Graceful exits during the chaos (k8s and rolling), from the preStop hook to the exit. */
export function shutdownTimes(ev: ChaosEvidence, kinds = GRACEFUL_KINDS): number[] {
  return ev.terminations
    .filter((t) => kinds.includes(t.kind) && t.exitAt !== undefined && !t.killedAtGrace)
    .map((t) => t.exitAt! - t.at);
}

/**
 * Scripted model work: every piece (run, step, chunk) is logged each time it is done.
 * `redone`: tokens of pieces done more than once (lost to a crash or an interruption);
 * `keptByProgress`: tokens a resumed long step did not redo thanks to saved progress.
 */
export function tokenFigures(ev: ChaosEvidence): {
  total: number;
  redone: number;
  keptByProgress: number;
} {
  const tokensOf = new Map<string, number>();
  let total = 0;
  let redone = 0;
  for (const line of ev.exec) {
    if (line.type !== "chunk" || line.tokens === undefined) continue;
    const key = `${line.run}/${line.step}/${line.chunk}`;
    total += line.tokens;
    if (tokensOf.has(key)) redone += line.tokens;
    else tokensOf.set(key, line.tokens);
  }
  let keptByProgress = 0;
  for (const line of ev.exec) {
    if (line.type !== "start" || !line.from) continue;
    for (let chunk = 0; chunk < line.from; chunk++)
      keptByProgress += tokensOf.get(`${line.run}/${line.step}/${chunk}`) ?? 0;
  }
  return { total, redone, keptByProgress };
}
