/**
 * The invariant checks of DESIGN.md §3, as pure functions of the evidence. Each returns
 * the violations it found, one readable sentence each; none means the invariant held.
 * Every check can fail: `test/chaos/` feeds each one bad data, and runs the harness with
 * fencing or the outbox switched off to show the live checks catch what they prevent.
 */
import { COMPENSATION_SEQ_BASE, TERMINAL_STATUSES } from "../store/store.js";
import {
  claimsOf,
  takenOverAt,
  GRACEFUL_KINDS,
  type ChaosEvidence,
  type StepEvidence,
} from "./evidence.js";
import { checkOneOwner, staleStarts } from "./ownership.js";

export type CheckId =
  | "runs-terminal"
  | "effects-once"
  | "money-conserved"
  | "ledger-fence"
  | "one-owner"
  | "no-step-reexecuted"
  | "compensations"
  | "graceful-exit"
  | "interruptions";

export type CheckResult = {
  id: CheckId;
  /** What holds when the check passes, as a person would say it. */
  title: string;
  /** The DESIGN.md §3 invariant it checks. */
  invariant: string;
  violations: string[];
};

/**
 * How long after the drain request a claim may still land: one issued just before it can
 * wait for a pooled connection (Postgres stamps a claim when its statement starts). A
 * worker that goes on claiming while it drains shows claims far later than this.
 */
export const CLAIM_AFTER_DRAIN_TOLERANCE_MS = 500;

/** The key the external system saw: recorded in the journal, else derived as Baton does. */
export function keyOf(runId: string, step: StepEvidence): string {
  if (step.idempotencyKey) return step.idempotencyKey;
  if (step.kind === "compensation") {
    const seq = step.seq - COMPENSATION_SEQ_BASE;
    return `${runId}:${seq}:${step.name.replace(/^compensate:/, "")}:compensate`;
  }
  return `${runId}:${step.seq}:${step.name}`;
}

/** §3.5, §3.8: every submitted run ended as it should (completed, or compensated when its report fails). */
export function checkRunsTerminal(ev: ChaosEvidence): string[] {
  const byId = new Map(ev.runs.map((r) => [r.id, r]));
  const violations: string[] = [];
  for (const s of ev.submitted) {
    const run = byId.get(s.id);
    const expected = s.fail ? "compensated" : "completed";
    if (!run) violations.push(`${s.id}: lost (not in the store)`);
    else if (!TERMINAL_STATUSES.includes(run.status))
      violations.push(`${s.id}: lost (still ${run.status} at the end; expected ${expected})`);
    else if (run.status !== expected)
      violations.push(
        `${s.id}: ended ${run.status}, expected ${expected}${run.error ? ` (${run.error})` : ""}`,
      );
  }
  return violations;
}

/** §3.3: every effect the journal records as done was applied by the ledger once, and asked once. */
export function checkEffectsOnce(ev: ChaosEvidence): string[] {
  const violations: string[] = [];
  const applied = new Map(ev.ledger.ops.map((op) => [op.key, op]));
  const recorded = new Set<string>();
  for (const run of ev.runs) {
    for (const step of run.steps) {
      if (step.kind !== "effect" && step.kind !== "compensation") continue;
      if (step.status !== "completed") continue;
      const key = keyOf(run.id, step);
      recorded.add(key);
      if (!applied.has(key))
        violations.push(
          `${run.id} ${step.name}: recorded as done, but the ledger never applied ${key}`,
        );
    }
  }
  for (const op of ev.ledger.ops) {
    if (!recorded.has(op.key))
      violations.push(`ledger applied ${op.key} (${op.kind}), but no journal records it done`);
  }
  const repeats = new Map<string, number>();
  for (const call of ev.ledger.calls)
    if (call.type === "apply" && call.outcome === "duplicate")
      repeats.set(call.key, (repeats.get(call.key) ?? 0) + 1);
  for (const [key, n] of repeats)
    violations.push(`${key}: applied once, then asked to apply it again ${n} more time(s)`);
  for (const call of ev.ledger.calls)
    if (call.outcome === "rejected")
      violations.push(`${call.key}: the ledger rejected it (account ${call.account})`);
  return violations;
}

/** Money is neither made nor lost: the total is unchanged, and each balance matches the journal. */
export function checkMoney(ev: ChaosEvidence): string[] {
  const violations: string[] = [];
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  const before = sum(ev.ledger.initial);
  const after = sum(ev.ledger.balances);
  if (before !== after)
    violations.push(`the accounts held ${before} in total at the start and ${after} at the end`);
  const status = new Map(ev.runs.map((r) => [r.id, r.status]));
  const expected = new Map(Object.entries(ev.ledger.initial));
  for (const s of ev.submitted) {
    if (status.get(s.id) !== "completed") continue;
    expected.set(s.from, (expected.get(s.from) ?? 0) - s.amount);
    expected.set(s.to, (expected.get(s.to) ?? 0) + s.amount);
  }
  for (const [account, want] of expected) {
    const got = ev.ledger.balances[account];
    if (got !== want)
      violations.push(
        `${account}: balance ${got}, but the completed transfers in the journal make it ${want}`,
      );
  }
  return violations;
}

/** §3.2 at the edge: the ledger accepted no request carrying a fence older than one it had seen. */
export function checkLedgerFence(ev: ChaosEvidence): string[] {
  const violations: string[] = [];
  const newest = new Map<string, number>();
  for (const call of [...ev.ledger.calls].sort((a, b) => a.seq - b.seq)) {
    const seen = newest.get(call.runId) ?? 0;
    if (call.outcome === "stale") continue;
    if (call.fence < seen)
      violations.push(
        `ledger call ${call.seq} (${call.type} ${call.key}) was ${call.outcome} with fence ${call.fence} after fence ${seen}`,
      );
    newest.set(call.runId, Math.max(seen, call.fence));
  }
  return violations;
}

/** §3.1: no step (or effect, or compensation) started after its result was committed. */
export function checkNoStepReexecuted(ev: ChaosEvidence): string[] {
  const committedAt = new Map<string, number>();
  for (const run of ev.runs)
    for (const step of run.steps)
      if (step.status === "completed") committedAt.set(`${run.id}/${step.name}`, step.updatedAt);
  const staleCalls = new Set(
    staleStarts(ev)
      .filter((st) => st.kind !== "step")
      .map((st) => st.line),
  );
  const violations: string[] = [];
  for (const line of ev.exec) {
    if (line.type !== "start" || staleCalls.has(line)) continue;
    const at = committedAt.get(`${line.run}/${line.step}`);
    if (at !== undefined && line.at > at)
      violations.push(
        `${line.run} ${line.step}: started again by pid ${line.pid}, ${line.at - at} ms after its result was committed`,
      );
  }
  return violations;
}

/** §3.6: a run that could not go forward had each completed effect undone once, in reverse order. */
export function checkCompensations(ev: ChaosEvidence): string[] {
  const violations: string[] = [];
  const runs = new Map(ev.runs.map((r) => [r.id, r]));
  const opsByRun = groupBy(ev.ledger.ops, (op) => op.runId);
  for (const s of ev.submitted) {
    const ops = opsByRun.get(s.id) ?? [];
    const forward = ops.filter((op) => op.kind === "debit" || op.kind === "credit");
    const undos = ops.filter((op) => op.kind === "undo-debit" || op.kind === "undo-credit");
    if (!s.fail) {
      for (const op of undos)
        violations.push(`${s.id}: ${op.kind} applied, but the run was not to be undone`);
      continue;
    }
    if (runs.get(s.id)?.status !== "compensated") continue; // reported by runs-terminal
    for (const op of forward) {
      const matching = undos.filter((u) => u.key === `${op.key}:compensate`);
      if (matching.length !== 1)
        violations.push(`${s.id}: ${op.kind} ${op.key} undone ${matching.length} times, not once`);
    }
    for (const u of undos)
      if (!forward.some((op) => u.key === `${op.key}:compensate`))
        violations.push(`${s.id}: ${u.kind} ${u.key} undoes nothing the run did`);
    const undoCredit = undos.find((op) => op.kind === "undo-credit");
    const undoDebit = undos.find((op) => op.kind === "undo-debit");
    if (undoCredit && undoDebit && undoCredit.opId > undoDebit.opId)
      violations.push(`${s.id}: the debit was undone before the credit (not in reverse order)`);
    const entries = (runs.get(s.id)?.steps ?? []).filter((st) => st.kind === "compensation");
    const names = entries.map((st) => `${st.name}:${st.status}`).sort();
    if (names.join() !== "compensate:credit:completed,compensate:debit:completed")
      violations.push(
        `${s.id}: journal compensations are [${names.join(", ")}], not credit and debit once each`,
      );
    const credit = entries.find((st) => st.name === "compensate:credit");
    const debit = entries.find((st) => st.name === "compensate:debit");
    if (credit && debit && credit.updatedAt > debit.updatedAt)
      violations.push(
        `${s.id}: the journal committed the debit's compensation before the credit's`,
      );
  }
  return violations;
}

/**
 * §3.4: every graceful termination exited by itself before its grace period, claimed
 * nothing after it was asked to drain, and left no run to lease expiry. (An exit code other
 * than 0 is a warning: the worker's own verdict, e.g. a phase over its budget.)
 */
export function checkGracefulExits(ev: ChaosEvidence): string[] {
  const violations: string[] = [];
  for (const t of ev.terminations) {
    if (!GRACEFUL_KINDS.includes(t.kind)) continue;
    const who = `${t.workerId} (${t.kind})`;
    if (t.killedAtGrace)
      violations.push(`${who}: still running ${ev.graceMs} ms after its preStop hook; SIGKILLed`);
    else if (t.exitAt === undefined) violations.push(`${who}: never exited`);
    else if (t.exitAt - t.at >= ev.graceMs)
      violations.push(
        `${who}: exited ${t.exitAt - t.at} ms after its preStop hook, grace ${ev.graceMs} ms`,
      );
    const askedAt = t.drainAckAt ?? t.sigtermAt ?? t.at;
    for (const run of ev.runs) {
      const claims = claimsOf(run);
      for (const [i, claim] of claims.entries()) {
        if (claim.workerId === t.workerId && claim.at > askedAt + CLAIM_AFTER_DRAIN_TOLERANCE_MS)
          violations.push(
            `${who}: claimed ${run.id} ${claim.at - askedAt} ms after it was asked to drain`,
          );
        const previous = claims[i - 1];
        if (claim.kind === "takeover" && previous?.workerId === t.workerId && claim.at > t.at)
          violations.push(
            `${who}: left ${run.id} to lease expiry (taken over by ${claim.workerId})`,
          );
      }
    }
  }
  return violations;
}

/** §3.7: no step's attempts were used up by a handoff or a crash (none of this workload's steps fails by itself). */
export function checkInterruptions(ev: ChaosEvidence): string[] {
  const violations: string[] = [];
  for (const run of ev.runs)
    for (const step of run.steps)
      if (step.status === "completed" && step.kind !== "sleep" && step.attempts !== 1)
        violations.push(
          `${run.id} ${step.name}: completed as attempt ${step.attempts}; interruptions must not count (run interrupted ${run.interruptions} times)`,
        );
  return violations;
}

/**
 * Findings that break no invariant but that an operator should see: a graceful exit with a
 * non-zero code (a shutdown phase over its budget), or ended by a signal's default action
 * after the drain had finished; a frozen worker nobody could take over; an effect called by
 * a superseded owner (kept safe by the ledger's fence).
 */
export function findWarnings(ev: ChaosEvidence): string[] {
  const warnings: string[] = [];
  for (const t of ev.terminations) {
    if (
      t.kind === "stop" &&
      t.continuedAt !== undefined &&
      t.takeoverSeenAt === undefined &&
      ev.runs.some((r) => takenOverAt(r, t.workerId, t.at) !== undefined)
    )
      warnings.push(
        `${t.workerId} (stop): no worker took its runs over while it was frozen (${t.continuedAt - t.at} ms); ` +
          `they moved only once it was continued. On SQLite, a worker frozen inside a commit holds the write lock`,
      );
    if (!GRACEFUL_KINDS.includes(t.kind) || t.killedAtGrace) continue;
    if (typeof t.exitCode === "number" && t.exitCode !== 0)
      warnings.push(
        `${t.workerId} (${t.kind}) exited with code ${t.exitCode}: its own report calls the shutdown unclean` +
          (t.shutdownProblems?.length ? ` (${t.shutdownProblems.join("; ")})` : ""),
      );
    if (typeof t.exitCode === "string")
      warnings.push(
        `${t.workerId} (${t.kind}) was ended by ${t.exitCode} ${t.exitAt !== undefined && t.sigtermAt !== undefined ? `${t.exitAt - t.sigtermAt} ms after it was sent` : ""}, not by its own exit: the signal came after the drain had finished`,
      );
  }
  for (const stale of staleStarts(ev))
    if (stale.kind !== "step")
      warnings.push(
        `${stale.line.run} ${stale.line.step}: ${stale.worker} called the ledger ${stale.afterMs} ms after ${stale.by.workerId} had claimed the run ` +
          `(its intent was written before it froze; the fence and the key kept the ledger safe)`,
      );
  return warnings;
}

export { checkOneOwner, staleStarts };

/** Every check, in the order the report shows them. */
export function runChecks(ev: ChaosEvidence): CheckResult[] {
  const check = (
    id: CheckId,
    title: string,
    invariant: string,
    fn: (ev: ChaosEvidence) => string[],
  ): CheckResult => ({ id, title, invariant, violations: fn(ev) });
  return [
    check(
      "runs-terminal",
      "every run ended, as expected (no run lost)",
      "§3.5, §3.8",
      checkRunsTerminal,
    ),
    check("no-step-reexecuted", "no completed step executed again", "§3.1", checkNoStepReexecuted),
    check("one-owner", "no write or step from a superseded owner", "§3.2", checkOneOwner),
    check("ledger-fence", "ledger accepted no stale-fence write", "§3.2", checkLedgerFence),
    check(
      "effects-once",
      "each idempotency key applied once, asked once",
      "§3.3",
      checkEffectsOnce,
    ),
    check(
      "money-conserved",
      "money conserved, balances match the journal",
      "§3.3, §3.6",
      checkMoney,
    ),
    check("compensations", "compensations once each, in reverse order", "§3.6", checkCompensations),
    check(
      "graceful-exit",
      "every graceful exit within grace, no run left behind",
      "§3.4",
      checkGracefulExits,
    ),
    check("interruptions", "interruptions used no attempts", "§3.7", checkInterruptions),
  ];
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}
