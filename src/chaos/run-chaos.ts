/**
 * `runChaos`: a game day in one call. It starts a ledger and N workers, submits M agent
 * runs that move money, terminates workers the way the world does while the runs are in
 * flight, waits for every run to end, stops the fleet gracefully, and checks every
 * invariant of DESIGN.md §3 against the ledger, the journal and the execution log.
 *
 * Reading order: `runChaos` → `unleash` (the kill schedule) → `gatherEvidence` →
 * `buildReport` (checks.ts, figures.ts).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Baton } from "../baton.js";
import { siblingModule } from "../internal/module-path.js";
import type { Store } from "../store/store.js";
import { TERMINAL_STATUSES } from "../store/store.js";
import {
  resolveChaosOptions,
  type ChaosOptions,
  type ResolvedChaosOptions,
} from "./chaos-options.js";
import { openHarnessStore, prepareChaosStore } from "./chaos-store.js";
import { chaosAgent, type ChaosRunInput } from "./chaos-workflows.js";
import type { ChaosEvidence, RunEvidence, SubmittedRun, TerminationKind } from "./evidence.js";
import { EXEC_LOG_ENV, readExecLog } from "./exec-log.js";
import { Fleet } from "./fleet.js";
import { startLedger } from "./ledger-client.js";
import { Prng } from "./prng.js";
import type { ChaosPhase, ChaosProgress } from "./progress.js";
import { buildReport, type ChaosReport } from "./report.js";

/** The ledger's accounts and their opening balances. */
const ACCOUNTS = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`acct-${i}`, 1_000_000]));
/** Runs are submitted over this share of the duration, so kills keep landing on runs in flight. */
const SUBMIT_SHARE = 0.9;

export async function runChaos(options: ChaosOptions = {}): Promise<ChaosReport> {
  const o = resolveChaosOptions(options);
  const startedAt = Date.now();
  const parent = o.dir ? resolve(o.dir) : tmpdir();
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, `baton-chaos-${o.seed}-`));
  const store = prepareChaosStore(o.store, dir, o.seed);
  const execLog = join(dir, "executions.jsonl");
  const fleet = new Fleet({
    logDir: dir,
    store: store.url,
    module: siblingModule(import.meta.url, "./chaos-workflows"),
    env: { ...o.env, [EXEC_LOG_ENV]: execLog },
    nodeArgs: o.nodeArgs,
    concurrency: o.concurrency,
    leaseMs: o.leaseMs,
    pollMs: o.pollMs,
    graceMs: o.graceMs,
    stopOutsideCommits: o.stopOutsideCommits,
  });
  const notes: string[] = [];
  let baton: Baton | undefined;
  let harnessStore: Store | undefined;
  let ledger: Awaited<ReturnType<typeof startLedger>> | undefined;
  const state = { phase: "starting" as ChaosPhase, submitted: 0, ended: 0 };
  const progress = () => {
    const terminations = Object.fromEntries(
      (["k8s", "sigkill", "stop", "rolling", "teardown"] as const).map((k) => [k, fleet.count(k)]),
    ) as Record<TerminationKind, number>;
    const p: ChaosProgress = {
      phase: state.phase,
      elapsedMs: Date.now() - startedAt,
      submitted: state.submitted,
      runs: o.runs,
      ended: state.ended,
      terminations,
      workersUp: fleet.up().length,
    };
    o.onProgress?.(p);
  };
  // If this process dies before its finally block, take the fleet and the ledger with it.
  const onExit = () => {
    fleet.killAllNow();
    ledger?.child.kill("SIGKILL");
  };
  process.once("exit", onExit);
  const ticker = setInterval(() => {
    void (async () => {
      if (baton && state.phase !== "checking") state.ended = await countEnded(baton.store);
      progress();
    })().catch(() => undefined);
  }, 1_000);

  try {
    ledger = await startLedger(o.nodeArgs);
    await ledger.openAccounts(ACCOUNTS);
    harnessStore = openHarnessStore(store.url);
    baton = await Baton.open({ store: harnessStore, workflows: [chaosAgent] });
    await baton.store.countRuns(); // creates and migrates the store before the workers race to
    const submitted = planRuns(o, ledger.url);
    await Promise.all(Array.from({ length: o.workers }, () => fleet.start()));

    state.phase = "chaos";
    const chaosStart = Date.now();
    const submitting = submitRuns(
      baton,
      submitted,
      chaosStart,
      o.durationMs * SUBMIT_SHARE,
      () => (state.submitted += 1),
      notes,
    ).then(
      () => undefined,
      (error: unknown) => ({ error }),
    );
    await unleash(fleet, baton.store, o, chaosStart, notes);
    const failed = await submitting;
    if (failed) throw failed.error;

    state.phase = "settling";
    await fleet.settle(o.graceMs + 10_000);
    while (fleet.up().length < o.workers) await fleet.start();
    const deadline = Date.now() + o.settleTimeoutMs;
    while (Date.now() < deadline && (state.ended = await countEnded(baton.store)) < o.runs)
      await sleep(200);
    if (state.ended < o.runs)
      notes.push(
        `${o.runs - state.ended} runs had not ended ${o.settleTimeoutMs} ms after the chaos`,
      );

    state.phase = "stopping";
    await Promise.all(fleet.alive().map((w) => fleet.terminate(w, "teardown")));
    await fleet.settle(5_000);

    state.phase = "checking";
    progress();
    const evidence = await gatherEvidence(baton, ledger, fleet, submitted, execLog, o, notes);
    notes.push(...fleet.errors);
    const report = buildReport(evidence, {
      seed: o.seed,
      store: store.description,
      config: {
        workers: o.workers,
        runs: o.runs,
        durationMs: o.durationMs,
        graceMs: o.graceMs,
        leaseMs: o.leaseMs,
        pollMs: o.pollMs,
        concurrency: o.concurrency,
        kill: o.kill,
        killIntervalMs: o.killIntervalMs,
        env: o.env,
      },
      elapsedMs: Date.now() - startedAt,
      replacements: fleet.replacements,
      notes,
      ...(o.keep ? { kept: dir } : {}),
    });
    if (o.keep) {
      writeFileSync(join(dir, "evidence.json"), JSON.stringify(evidence));
      writeFileSync(join(dir, "report.json"), JSON.stringify(report, null, 2));
    }
    return report;
  } finally {
    clearInterval(ticker);
    await fleet.killAll();
    await ledger?.stop();
    await baton?.close();
    await harnessStore?.close();
    process.off("exit", onExit);
    if (!o.keep) {
      await store.dispose().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** The runs to submit, with seeded inputs: who pays whom, how much, and whether it must be undone. */
function planRuns(
  o: ResolvedChaosOptions,
  ledgerUrl: string,
): Array<SubmittedRun & { input: ChaosRunInput }> {
  const rng = new Prng(o.seed ^ 0x5bd1e995);
  const accounts = Object.keys(ACCOUNTS);
  const w = o.workload;
  return Array.from({ length: o.runs }, (_, i) => {
    const from = rng.between(0, accounts.length - 1);
    const to = (from + rng.between(1, accounts.length - 1)) % accounts.length;
    const run = {
      id: `chaos-${String(i).padStart(5, "0")}`,
      from: accounts[from]!,
      to: accounts[to]!,
      amount: rng.between(1, 500),
      fail: rng.next() < w.failRate,
    };
    const input: ChaosRunInput = {
      ledger: ledgerUrl,
      ...run,
      sleepMs: rng.between(w.sleepMs[0], w.sleepMs[1]),
      modelMs: w.modelMs,
      ledgerMs: w.ledgerMs,
      sources: w.sources,
    };
    return { ...run, input };
  });
}

async function submitRuns(
  baton: Baton,
  runs: ReadonlyArray<SubmittedRun & { input: ChaosRunInput }>,
  startAt: number,
  windowMs: number,
  onSubmitted: () => void,
  notes: string[],
): Promise<void> {
  let retried = 0;
  for (const [i, run] of runs.entries()) {
    const wait = startAt + (windowMs * i) / runs.length - Date.now();
    if (wait > 0) await sleep(wait);
    // As a client would: a start refused for a moment (SQLite's write lock held by a
    // frozen worker) is tried again, with the same id, so it is never doubled.
    const giveUpAt = Date.now() + 60_000;
    for (let attempt = 0; ; attempt++) {
      try {
        await baton.start(chaosAgent, run.input, { id: run.id });
        break;
      } catch (error) {
        if (Date.now() > giveUpAt) throw error;
        retried += 1;
        await sleep(Math.min(1_000, 20 * 2 ** attempt));
      }
    }
    onSubmitted();
  }
  if (retried > 0) notes.push(`${retried} run submissions were retried (the store was busy)`);
}

/**
 * The kill schedule: every `killIntervalMs` on average (seeded, 0.5× to 1.5×), a kind by
 * its weight and a victim among the workers that are up (never the last one). Rolling
 * restarts are spread evenly over the duration. Terminations are not awaited: a k8s
 * termination takes its time while the chaos goes on, as it does in a cluster.
 */
async function unleash(
  fleet: Fleet,
  store: Store,
  o: ResolvedChaosOptions,
  startAt: number,
  notes: string[],
): Promise<void> {
  const rng = new Prng(o.seed);
  const endAt = startAt + o.durationMs;
  const rollouts = Array.from(
    { length: o.rollingRestarts },
    (_, k) => startAt + (o.durationMs * (k + 1)) / (o.rollingRestarts + 1),
  );
  const anyKill = o.kill.k8s + o.kill.sigkill + o.kill.stop > 0;
  let nextKill = startAt + o.killIntervalMs * (0.5 + rng.next());
  let skipped = 0;
  while (Date.now() < endAt) {
    if (rollouts.length > 0 && Date.now() >= rollouts[0]!) {
      rollouts.shift();
      await rollingRestart(fleet, o);
      continue;
    }
    if (anyKill && Date.now() >= nextKill) {
      const kind = rng.weighted(o.kill);
      const pick = rng.next();
      const continueAfterMs = rng.between(30, 150);
      nextKill += o.killIntervalMs * (0.5 + rng.next());
      const up = fleet.up();
      if (up.length < 2) {
        skipped += 1;
        continue;
      }
      const victim = up[Math.floor(pick * up.length)]!;
      if (kind === "k8s") {
        fleet.replace();
        fleet.track(fleet.terminate(victim, "k8s"));
      } else if (kind === "sigkill") {
        fleet.kill(victim);
        fleet.replace();
      } else {
        fleet.track(fleet.freeze(victim, store, continueAfterMs));
      }
    }
    await sleep(Math.max(5, Math.min(50, nextKill - Date.now(), endAt - Date.now())));
  }
  if (skipped > 0) notes.push(`${skipped} terminations skipped: fewer than two workers were up`);
}

/**
 * A Deployment's rollout (maxSurge 1, maxUnavailable 0) of every worker: a new worker,
 * ready, then an old one terminated, one after another. It starts once the fleet is whole
 * (replacements up, no worker frozen; at most lease + 10 s), so that every worker is rolled.
 */
async function rollingRestart(fleet: Fleet, o: ResolvedChaosOptions): Promise<void> {
  const waitUntil = Date.now() + o.leaseMs + 10_000;
  const whole = () =>
    fleet.up().length >= o.workers && !fleet.workers.some((w) => w.state === "stopped");
  while (!whole() && Date.now() < waitUntil) await sleep(50);
  for (const old of fleet.up()) {
    if (old.state !== "running") continue;
    await fleet.start();
    fleet.track(fleet.terminate(old, "rolling"));
  }
}

async function countEnded(store: Store): Promise<number> {
  const counts = await store.countRuns();
  return TERMINAL_STATUSES.reduce((sum, status) => sum + (counts[status] ?? 0), 0);
}

async function gatherEvidence(
  baton: Baton,
  ledger: { state(): Promise<ChaosEvidence["ledger"]> },
  fleet: Fleet,
  submitted: SubmittedRun[],
  execLog: string,
  o: ResolvedChaosOptions,
  notes: string[],
): Promise<ChaosEvidence> {
  const summaries = await baton.list({ limit: o.runs + 1_000 });
  const runs: RunEvidence[] = [];
  for (let i = 0; i < summaries.length; i += 16) {
    const batch = await Promise.all(summaries.slice(i, i + 16).map((s) => baton.get(s.id)));
    for (const d of batch) {
      if (!d) continue;
      runs.push({
        id: d.id,
        status: d.status,
        ...(d.error ? { error: `${d.error.name}: ${d.error.message}` } : {}),
        interruptions: d.interruptions,
        steps: d.steps.map(
          ({ seq, name, kind, status, attempts, fence, workerId, idempotencyKey, updatedAt }) => ({
            seq,
            name,
            kind,
            status,
            attempts,
            fence,
            workerId,
            idempotencyKey,
            updatedAt,
          }),
        ),
        events: d.events.map(({ kind, at, workerId, fence }) => ({ kind, at, workerId, fence })),
      });
    }
  }
  const { lines, torn } = readExecLog(execLog);
  if (torn > 0) notes.push(`${torn} execution-log lines were torn by kills and skipped`);
  return {
    submitted: submitted.map(({ id, from, to, amount, fail }) => ({ id, from, to, amount, fail })),
    runs,
    ledger: await ledger.state(),
    exec: lines,
    workers: fleet.workers.map((w) => ({ workerId: w.workerId, pid: w.pid })),
    terminations: fleet.terminations,
    graceMs: o.graceMs,
    leaseMs: o.leaseMs,
  };
}
