/**
 * Every invariant check of the chaos harness, fed a clean synthetic game day (it passes)
 * and then the same day with one thing broken (the matching check fails). Together with
 * the live runs in harness-*.test.ts, this shows each check is able to fail.
 */
import { describe, expect, it } from "vitest";
import {
  checkCompensations,
  checkEffectsOnce,
  checkGracefulExits,
  checkInterruptions,
  checkLedgerFence,
  checkMoney,
  checkNoStepReexecuted,
  checkOneOwner,
  checkRunsTerminal,
  findWarnings,
  runChecks,
} from "../../src/chaos/checks.js";
import type { ChaosEvidence, RunEvidence, StepEvidence } from "../../src/chaos/evidence.js";
import { distribution, recoveryTimes, tokenFigures } from "../../src/chaos/figures.js";
import type { AppliedOp, LedgerCall } from "../../src/chaos/ledger.js";
import { buildReport, formatReport } from "../../src/chaos/report.js";
import { COMPENSATION_SEQ_BASE } from "../../src/store/store.js";

const W1 = "w1";
const W2 = "w2";
const A = "chaos-00000"; // completed, after a handoff from w1 to w2 and a durable sleep
const B = "chaos-00001"; // its report fails: compensated, credit undone before debit

const step = (
  seq: number,
  name: string,
  fence: number,
  workerId: string,
  updatedAt: number,
  extra: Partial<StepEvidence> = {},
): StepEvidence => ({
  seq,
  name,
  kind: "step",
  status: "completed",
  attempts: 1,
  fence,
  workerId,
  idempotencyKey: null,
  updatedAt,
  ...extra,
});

const op = (
  opId: number,
  key: string,
  account: string,
  amount: number,
  kind: AppliedOp["kind"],
  fence: number,
): AppliedOp => ({ opId, key, runId: key.split(":")[0]!, fence, account, amount, kind, at: opId });

/** A small, consistent game day: every check passes on it. */
function cleanDay(): ChaosEvidence {
  const runA: RunEvidence = {
    id: A,
    status: "completed",
    interruptions: 1,
    events: [
      { kind: "created", at: 1000, workerId: null, fence: 0 },
      { kind: "claimed", at: 1001, workerId: W1, fence: 1 },
      { kind: "handoff", at: 1100, workerId: W1, fence: 1 },
      { kind: "claimed", at: 1105, workerId: W2, fence: 2 },
      { kind: "sleeping", at: 1200, workerId: W2, fence: 2 },
      { kind: "claimed", at: 1500, workerId: W2, fence: 3 },
      { kind: "completed", at: 1600, workerId: W2, fence: 3 },
    ],
    steps: [
      step(0, "plan", 1, W1, 1050),
      step(1, "research", 2, W2, 1150),
      step(2, "debit", 2, W2, 1170, { kind: "effect", idempotencyKey: `${A}:2:debit` }),
      step(3, "credit", 2, W2, 1190, { kind: "effect", idempotencyKey: `${A}:3:credit` }),
      step(4, "settle", 2, W2, 1195, { kind: "sleep" }),
      step(5, "report", 3, W2, 1590),
    ],
  };
  const runB: RunEvidence = {
    id: B,
    status: "compensated",
    error: "TerminalError: rejected",
    interruptions: 0,
    events: [
      { kind: "created", at: 2000, workerId: null, fence: 0 },
      { kind: "claimed", at: 2001, workerId: W1, fence: 1 },
      { kind: "sleeping", at: 2200, workerId: W1, fence: 1 },
      { kind: "claimed", at: 2500, workerId: W1, fence: 2 },
      { kind: "compensating", at: 2600, workerId: W1, fence: 2 },
      { kind: "compensated", at: 2700, workerId: W1, fence: 2 },
    ],
    steps: [
      step(0, "plan", 1, W1, 2050),
      step(1, "research", 1, W1, 2100),
      step(2, "debit", 1, W1, 2120, { kind: "effect", idempotencyKey: `${B}:2:debit` }),
      step(3, "credit", 1, W1, 2140, { kind: "effect", idempotencyKey: `${B}:3:credit` }),
      step(4, "settle", 1, W1, 2150, { kind: "sleep" }),
      step(5, "report", 2, W1, 2590, { status: "failed" }),
      step(COMPENSATION_SEQ_BASE + 3, "compensate:credit", 2, W1, 2650, {
        kind: "compensation",
        idempotencyKey: `${B}:3:credit:compensate`,
      }),
      step(COMPENSATION_SEQ_BASE + 2, "compensate:debit", 2, W1, 2680, {
        kind: "compensation",
        idempotencyKey: `${B}:2:debit:compensate`,
      }),
    ],
  };
  const ops = [
    op(1, `${A}:2:debit`, "acct-0", -100, "debit", 2),
    op(2, `${A}:3:credit`, "acct-1", 100, "credit", 2),
    op(3, `${B}:2:debit`, "acct-1", -50, "debit", 1),
    op(4, `${B}:3:credit`, "acct-0", 50, "credit", 1),
    op(5, `${B}:3:credit:compensate`, "acct-0", -50, "undo-credit", 2),
    op(6, `${B}:2:debit:compensate`, "acct-1", 50, "undo-debit", 2),
  ];
  const calls: LedgerCall[] = ops.map((o) => ({
    seq: o.opId,
    at: o.at,
    type: "apply",
    key: o.key,
    runId: o.runId,
    fence: o.fence,
    kind: o.kind,
    account: o.account,
    amount: o.amount,
    outcome: "applied",
  }));
  const line = (run: string, name: string, pid: number, at: number, extra = {}) => ({
    run,
    step: name,
    pid,
    at,
    type: "start" as const,
    ...extra,
  });
  return {
    submitted: [
      { id: A, from: "acct-0", to: "acct-1", amount: 100, fail: false },
      { id: B, from: "acct-1", to: "acct-0", amount: 50, fail: true },
    ],
    runs: [runA, runB],
    ledger: {
      initial: { "acct-0": 1000, "acct-1": 1000 },
      balances: { "acct-0": 900, "acct-1": 1100 },
      ops,
      calls,
    },
    exec: [
      line(A, "plan", 101, 1010),
      { run: A, step: "plan", pid: 101, at: 1020, type: "chunk", chunk: 0, tokens: 50 },
      line(A, "research", 101, 1060, { from: 0 }),
      { run: A, step: "research", pid: 101, at: 1080, type: "chunk", chunk: 0, tokens: 40 },
      line(A, "research", 102, 1110, { from: 1 }),
      { run: A, step: "research", pid: 102, at: 1140, type: "chunk", chunk: 1, tokens: 30 },
      line(A, "debit", 102, 1155),
      line(A, "credit", 102, 1175),
      line(A, "report", 102, 1510),
      line(B, "plan", 101, 2010),
      line(B, "research", 101, 2060, { from: 0 }),
      line(B, "debit", 101, 2110),
      line(B, "credit", 101, 2130),
      line(B, "report", 101, 2510),
      line(B, "compensate:credit", 101, 2610),
      line(B, "compensate:debit", 101, 2660),
    ],
    workers: [
      { workerId: W1, pid: 101 },
      { workerId: W2, pid: 102 },
    ],
    terminations: [
      {
        kind: "k8s",
        workerId: W1,
        pid: 101,
        at: 3000,
        drainAckAt: 3005,
        sigtermAt: 3006,
        exitAt: 3300,
        exitCode: 0,
      },
    ],
    graceMs: 10_000,
    leaseMs: 2_000,
  };
}

const runOf = (ev: ChaosEvidence, id: string) => ev.runs.find((r) => r.id === id)!;

describe("the checks on a clean game day", () => {
  it("find no violation, and the figures add up", () => {
    const ev = cleanDay();
    expect(runChecks(ev).filter((c) => c.violations.length > 0)).toEqual([]);
    expect(recoveryTimes(ev)).toEqual({ handoff: [10], crash: [], stall: [] });
    expect(tokenFigures(ev)).toEqual({ total: 120, redone: 0, keptByProgress: 40 });
    expect(distribution([5, 1, 3, 100])).toEqual({ count: 4, p50: 3, p99: 100, max: 100 });
    const report = buildReport(ev, {
      seed: 1,
      store: "sqlite:x",
      config: {
        workers: 2,
        runs: 2,
        durationMs: 1_000,
        graceMs: 10_000,
        leaseMs: 2_000,
        pollMs: 200,
        concurrency: 4,
        kill: { k8s: 1, sigkill: 0, stop: 0 },
        killIntervalMs: 500,
        env: {},
      },
      elapsedMs: 5_000,
      replacements: 1,
      notes: [],
    });
    expect(report).toMatchObject({ ok: true, violations: 0, handoffs: 1 });
    expect(formatReport(report)).toMatch(/PASS {2}every invariant held/);
  });
});

describe("each check fails on the fault it is there to catch", () => {
  it("a lost run: one still running at the end, one missing from the store", () => {
    const ev = cleanDay();
    runOf(ev, B).status = "running";
    expect(checkRunsTerminal(ev)).toEqual([
      `${B}: lost (still running at the end; expected compensated)`,
    ]);
    ev.runs = ev.runs.filter((r) => r.id !== B);
    expect(checkRunsTerminal(ev)).toEqual([`${B}: lost (not in the store)`]);
  });

  it("a run that ended other than expected (failed by an infrastructure error)", () => {
    const ev = cleanDay();
    Object.assign(runOf(ev, A), { status: "failed", error: "SqliteError: database is locked" });
    expect(checkRunsTerminal(ev)).toEqual([
      `${A}: ended failed, expected completed (SqliteError: database is locked)`,
    ]);
  });

  it("money not conserved: a balance the operations do not explain", () => {
    const ev = cleanDay();
    ev.ledger.balances["acct-0"] = 901;
    expect(checkMoney(ev)).toEqual([
      "the accounts held 2000 in total at the start and 2001 at the end",
      "acct-0: balance 901, but the completed transfers in the journal make it 900",
    ]);
  });

  it("a balance that does not match the journal although the total is conserved", () => {
    const ev = cleanDay();
    runOf(ev, A).status = "compensated";
    expect(checkMoney(ev)).toHaveLength(2);
  });

  it("compensations out of order: the debit undone before the credit", () => {
    const ev = cleanDay();
    const [undoCredit, undoDebit] = ev.ledger.ops.slice(4);
    [undoCredit!.opId, undoDebit!.opId] = [6, 5];
    const journal = runOf(ev, B).steps;
    journal.find((s) => s.name === "compensate:credit")!.updatedAt = 2690;
    expect(checkCompensations(ev)).toEqual([
      `${B}: the debit was undone before the credit (not in reverse order)`,
      `${B}: the journal committed the debit's compensation before the credit's`,
    ]);
  });

  it("a compensation missing, and one for a run that was not to be undone", () => {
    const ev = cleanDay();
    ev.ledger.ops = ev.ledger.ops.filter((o) => o.kind !== "undo-debit");
    runOf(ev, B).steps = runOf(ev, B).steps.filter((s) => s.name !== "compensate:debit");
    ev.ledger.ops.push(op(7, `${A}:2:debit:compensate`, "acct-0", 100, "undo-debit", 3));
    expect(checkCompensations(ev)).toEqual([
      `${A}: undo-debit applied, but the run was not to be undone`,
      `${B}: debit ${B}:2:debit undone 0 times, not once`,
      `${B}: journal compensations are [compensate:credit:completed], not credit and debit once each`,
    ]);
  });

  it("an effect asked again after it was applied (what the outbox prevents)", () => {
    const ev = cleanDay();
    const first = ev.ledger.calls[0]!;
    ev.ledger.calls.push({ ...first, seq: 7, at: 7, outcome: "duplicate" });
    expect(checkEffectsOnce(ev)).toEqual([
      `${A}:2:debit: applied once, then asked to apply it again 1 more time(s)`,
    ]);
  });

  it("an effect the journal calls done that the ledger never applied, and the reverse", () => {
    const ev = cleanDay();
    ev.ledger.ops = ev.ledger.ops.filter((o) => o.key !== `${A}:3:credit`);
    runOf(ev, B).steps = runOf(ev, B).steps.filter((s) => s.name !== "debit");
    expect(checkEffectsOnce(ev)).toEqual([
      `${A} credit: recorded as done, but the ledger never applied ${A}:3:credit`,
      `ledger applied ${B}:2:debit (debit), but no journal records it done`,
    ]);
  });

  it("the ledger accepting a stale fence", () => {
    const ev = cleanDay();
    ev.ledger.calls.push({ ...ev.ledger.calls[0]!, seq: 7, fence: 1, outcome: "duplicate" });
    expect(checkLedgerFence(ev)).toEqual([
      `ledger call 7 (apply ${A}:2:debit) was duplicate with fence 1 after fence 2`,
    ]);
  });

  it("a stale write accepted by the store, and a superseded owner starting a step (what fencing prevents)", () => {
    const ev = cleanDay();
    Object.assign(runOf(ev, A).steps[1]!, { fence: 1, workerId: W1, updatedAt: 1160 });
    ev.exec.push({ run: A, step: "report", pid: 101, at: 1165, type: "start" });
    runOf(ev, A).events.push({ kind: "completed", at: 1700, workerId: W1, fence: 1 });
    expect(checkOneOwner(ev)).toEqual([
      `${A} research: completed written with fence 1 by w1, 50 ms after w2 had claimed fence 2 (a stale write accepted)`,
      `${A}: completed by w1 with fence 1, 590 ms after w2 had claimed fence 2 (a stale transition accepted)`,
      `${A} report: started by w1 55 ms after w2 had claimed the run (fence 2)`,
    ]);
  });

  it("a claim is dated by what proves it took effect, not by its stamp (SQLite stamps it before waiting for the lock)", () => {
    const ev = cleanDay();
    // w2's claim is stamped 1105, but w2 did nothing with the run before 1200: w1's write
    // at 1160 may have come first, legitimately.
    ev.exec = ev.exec.filter((l) => !(l.run === A && l.pid === 102 && l.at < 1200));
    Object.assign(runOf(ev, A).steps[1]!, { fence: 1, workerId: W1, updatedAt: 1160 });
    expect(checkOneOwner(ev)).toEqual([]);
  });

  it("a completed step executed again", () => {
    const ev = cleanDay();
    ev.exec.push({ run: A, step: "plan", pid: 102, at: 1110, type: "start" });
    expect(checkNoStepReexecuted(ev)).toEqual([
      `${A} plan: started again by pid 102, 60 ms after its result was committed`,
    ]);
  });

  it("a graceful exit past its grace period, SIGKILLed, claiming while draining, leaving a run behind", () => {
    const ev = cleanDay();
    const t = ev.terminations[0]!;
    t.exitAt = t.at + ev.graceMs + 1;
    expect(checkGracefulExits(ev)).toEqual([
      "w1 (k8s): exited 10001 ms after its preStop hook, grace 10000 ms",
    ]);
    Object.assign(t, { killedAtGrace: true, exitCode: "SIGKILL" });
    runOf(ev, A).events.push({ kind: "claimed", at: 3600, workerId: W1, fence: 4 });
    runOf(ev, A).events.push({ kind: "takeover", at: 5200, workerId: W2, fence: 5 });
    expect(checkGracefulExits(ev)).toEqual([
      "w1 (k8s): still running 10000 ms after its preStop hook; SIGKILLed",
      `w1 (k8s): claimed ${A} 595 ms after it was asked to drain`,
      `w1 (k8s): left ${A} to lease expiry (taken over by w2)`,
    ]);
  });

  it("a non-zero exit code is a warning that names what the worker's report found", () => {
    const ev = cleanDay();
    Object.assign(ev.terminations[0]!, {
      exitCode: 1,
      shutdownProblems: ["notReady timed out after 103 ms"],
    });
    expect(checkGracefulExits(ev)).toEqual([]);
    expect(findWarnings(ev)).toEqual([
      "w1 (k8s) exited with code 1: its own report calls the shutdown unclean (notReady timed out after 103 ms)",
    ]);
  });

  it("an exit by SIGTERM's default action after the drain is a warning, not a violation", () => {
    const ev = cleanDay();
    ev.terminations[0]!.exitCode = "SIGTERM";
    expect(checkGracefulExits(ev)).toEqual([]);
    expect(findWarnings(ev)).toEqual([
      "w1 (k8s) was ended by SIGTERM 294 ms after it was sent, not by its own exit: the signal came after the drain had finished",
    ]);
  });

  it("an interruption that used up an attempt", () => {
    const ev = cleanDay();
    runOf(ev, A).steps[1]!.attempts = 2;
    expect(checkInterruptions(ev)).toEqual([
      `${A} research: completed as attempt 2; interruptions must not count (run interrupted 1 times)`,
    ]);
  });

  it("a broken day fails the report, and says so first", () => {
    const ev = cleanDay();
    runOf(ev, B).status = "failed";
    const report = buildReport(ev, {
      seed: 9,
      store: "sqlite:x",
      config: {
        workers: 2,
        runs: 2,
        durationMs: 1_000,
        graceMs: 10_000,
        leaseMs: 2_000,
        pollMs: 200,
        concurrency: 4,
        kill: { k8s: 1, sigkill: 0, stop: 0 },
        killIntervalMs: 500,
        env: {},
      },
      elapsedMs: 5_000,
      replacements: 1,
      notes: [],
    });
    expect(report.ok).toBe(false);
    expect(formatReport(report).split("\n")[2]).toMatch(/FAIL {2}\d+ violation/);
  });
});

describe("warnings", () => {
  it("an effect called by a superseded owner is a warning (the fence's job), a plain step a violation", () => {
    const ev = cleanDay();
    ev.exec.push({ run: A, step: "credit", pid: 101, at: 1180, type: "start" });
    expect(checkOneOwner(ev)).toEqual([]);
    expect(checkNoStepReexecuted(ev)).toEqual([]);
    expect(findWarnings(ev)).toEqual([
      `${A} credit: w1 called the ledger 70 ms after w2 had claimed the run (its intent was written before it froze; the fence and the key kept the ledger safe)`,
    ]);
    ev.exec.push({ run: A, step: "report", pid: 101, at: 1180, type: "start" });
    expect(checkOneOwner(ev)).toEqual([
      `${A} report: started by w1 70 ms after w2 had claimed the run (fence 2)`,
    ]);
  });

  it("a frozen worker whose runs moved only once it was continued (a writer frozen inside a commit on SQLite)", () => {
    const ev = cleanDay();
    const events = runOf(ev, A).events;
    events.splice(4, 0, { kind: "takeover", at: 1_300, workerId: W1, fence: 9 }); // after w2's claim at 1105
    ev.terminations.push({ kind: "stop", workerId: W2, pid: 102, at: 1_250, continuedAt: 1_320 });
    expect(findWarnings(ev)).toEqual([
      "w2 (stop): no worker took its runs over while it was frozen (70 ms); they moved only once it was continued. On SQLite, a worker frozen inside a commit holds the write lock",
    ]);
    ev.terminations.at(-1)!.takeoverSeenAt = 1_301;
    expect(findWarnings(ev)).toEqual([]);
  });
});
