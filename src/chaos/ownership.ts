/**
 * Who owned a run when: the claims on its timeline, each with the earliest moment the
 * evidence proves it had been committed. A claim's own timestamp is not that moment: the
 * SQLite store stamps a claim with the time it began waiting for the write lock, which can
 * be long before the claim took effect. What proves a claim had taken effect is something
 * its worker could only do afterwards: start work on the run (the execution log), or have
 * a write with the claim's fence accepted (the journal, the run's transitions).
 */
import type { JournalKind } from "../store/store.js";
import { claimsOf, type ChaosEvidence, type EventEvidence, type RunEvidence } from "./evidence.js";
import type { ExecLine } from "./exec-log.js";

/** How much later than a claim's proof a write or a start must be to count as stale. */
export const SUPERSEDED_MARGIN_MS = 25;

/** Run transitions the store makes only for the run's owner, fenced. */
export const OWNER_TRANSITIONS = new Set([
  "completed",
  "failed",
  "compensating",
  "compensated",
  "handoff",
  "sleeping",
]);

export type ProvenClaim = EventEvidence & { workerId: string; fence: number; provenAt: number };

export class Ownership {
  private readonly pidOf: Map<string, number>;
  private readonly lines = new Map<string, number[]>();

  constructor(ev: ChaosEvidence) {
    this.pidOf = new Map(ev.workers.map((w) => [w.workerId, w.pid]));
    for (const line of ev.exec) {
      const key = `${line.run}/${line.pid}`;
      const list = this.lines.get(key);
      if (list) list.push(line.at);
      else this.lines.set(key, [line.at]);
    }
    for (const list of this.lines.values()) list.sort((a, b) => a - b);
  }

  /**
   * The first claim of `run` with a fence above `fence` proven committed more than the
   * margin before `at`. `writer`'s own execution-log lines prove nothing of its own claims
   * (an older execution in the same process may have written them).
   */
  supersededBy(
    run: RunEvidence,
    fence: number,
    at: number,
    writer: string | null,
  ): ProvenClaim | undefined {
    let first: ProvenClaim | undefined;
    for (const claim of claimsOf(run)) {
      if (claim.workerId === null || claim.fence === null || claim.fence <= fence) continue;
      const provenAt = this.provenAt(run, claim as ProvenClaim, writer);
      if (provenAt < at - SUPERSEDED_MARGIN_MS && (!first || provenAt < first.provenAt))
        first = { ...(claim as ProvenClaim), provenAt };
    }
    return first;
  }

  private provenAt(run: RunEvidence, claim: ProvenClaim, writer: string | null): number {
    const times: number[] = [];
    if (claim.workerId !== writer) {
      const pid = this.pidOf.get(claim.workerId);
      const line = (this.lines.get(`${run.id}/${pid}`) ?? []).find((t) => t >= claim.at);
      if (line !== undefined) times.push(line);
    }
    for (const step of run.steps)
      if (step.fence === claim.fence && step.workerId === claim.workerId)
        times.push(step.updatedAt);
    for (const event of run.events)
      if (
        OWNER_TRANSITIONS.has(event.kind) &&
        event.fence === claim.fence &&
        event.workerId === claim.workerId
      )
        times.push(event.at);
    return times.length ? Math.min(...times) : Infinity;
  }
}

/** "vm-2 claimed fence 3", or "this worker re-claimed the run" when the writer did. */
function newerClaim(claim: ProvenClaim, writer: string | null): string {
  return claim.workerId === writer
    ? `this worker re-claimed the run (fence ${claim.fence}), so an older execution of it wrote`
    : `${claim.workerId} had claimed fence ${claim.fence}`;
}

export type StaleStart = {
  line: ExecLine;
  worker: string;
  /** The claim that had superseded the worker when it started. */
  by: ProvenClaim;
  afterMs: number;
  /** The journal kind of what started: a plain step, or an effect's `run` or a compensation. */
  kind: JournalKind;
};

/**
 * Starts (execution-log lines) by a worker after another worker's newer claim was proven.
 * A plain step so started is a violation: the worker checks its lease right before a step
 * starts. An effect's `run` (or a compensation) is different: the check happens before its
 * intent is written, and a worker frozen while that write was on its way wakes up and
 * calls the outside world with its old fence; the ledger's fence and the idempotency key
 * are what keep the world safe then (the ledger and effects checks).
 */
export function staleStarts(ev: ChaosEvidence, ownership = new Ownership(ev)): StaleStart[] {
  const workerOfPid = new Map(ev.workers.map((w) => [w.pid, w.workerId]));
  const runs = new Map(ev.runs.map((r) => [r.id, r]));
  const found: StaleStart[] = [];
  for (const line of ev.exec) {
    if (line.type !== "start") continue;
    const run = runs.get(line.run);
    const worker = workerOfPid.get(line.pid);
    if (!run || worker === undefined) continue;
    const own = claimsOf(run)
      .filter((c) => c.workerId === worker && c.at <= line.at)
      .at(-1);
    const by = ownership.supersededBy(run, own?.fence ?? 0, line.at, worker);
    if (!by) continue;
    const kind = run.steps.find((st) => st.name === line.step)?.kind ?? "step";
    found.push({ line, worker, by, afterMs: line.at - by.provenAt, kind });
  }
  return found;
}

/**
 * §3.2: one owner. The store accepted no journal write and no run transition from a worker
 * after a newer claim of the run had taken effect, and such a worker started no step.
 */
export function checkOneOwner(ev: ChaosEvidence): string[] {
  const ownership = new Ownership(ev);
  const violations: string[] = [];
  for (const run of ev.runs) {
    for (const step of run.steps) {
      const newer = ownership.supersededBy(run, step.fence, step.updatedAt, step.workerId);
      if (newer)
        violations.push(
          `${run.id} ${step.name}: ${step.status} written with fence ${step.fence} by ${step.workerId}, ` +
            `${step.updatedAt - newer.provenAt} ms after ${newerClaim(newer, step.workerId)} (a stale write accepted)`,
        );
    }
    for (const event of run.events) {
      if (!OWNER_TRANSITIONS.has(event.kind) || event.workerId === null || event.fence === null)
        continue;
      const newer = ownership.supersededBy(run, event.fence, event.at, event.workerId);
      if (newer)
        violations.push(
          `${run.id}: ${event.kind} by ${event.workerId} with fence ${event.fence}, ` +
            `${event.at - newer.provenAt} ms after ${newerClaim(newer, event.workerId)} (a stale transition accepted)`,
        );
    }
  }
  for (const stale of staleStarts(ev, ownership))
    if (stale.kind === "step")
      violations.push(
        `${stale.line.run} ${stale.line.step}: started by ${stale.worker} ${stale.afterMs} ms after ${stale.by.workerId} had claimed the run (fence ${stale.by.fence})`,
      );
  return violations;
}
