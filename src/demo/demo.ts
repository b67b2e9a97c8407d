/**
 * `baton demo` (what `npm start` runs): a short chaos run on the embedded SQLite store,
 * told for a newcomer. It says what is about to happen, shows a live progress line while
 * `runChaos` terminates workers under agent runs that move money, then prints the chaos
 * report and one sentence in plain words. The harness does all the work; this file frames it.
 */
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import type { ChaosReport } from "../chaos/report.js";
import { formatReport } from "../chaos/report.js";
import { runChaos } from "../chaos/run-chaos.js";
import { ProgressLine, type ProgressOutput } from "./demo-progress.js";
import { RunMovesCounter } from "./run-moves.js";

export type DemoOptions = {
  /** Worker processes kept up. */
  workers: number;
  runs: number;
  /** How long workers are terminated for; the runs are submitted over the first 90%. */
  durationMs: number;
  /** Makes the kill schedule, the victims and the inputs the same on every run. */
  seed: number;
  /** Holds the store (`demo.db`), replaced on every run, and the run's logs while it runs. */
  dir: string;
  /** Where everything is printed. (Default: process.stdout) */
  out?: ProgressOutput;
};

/** The defaults of `baton demo`: about 30 s on a loaded two-core machine, every kind of kill. */
export const DEMO_DEFAULTS = {
  workers: 4,
  runs: 150,
  durationMs: 15_000,
  seed: 7,
  dir: ".baton-demo",
} as const;

/** Mean time between terminations: a few of each kind in the default 15 s. */
const KILL_INTERVAL_MS = 1_500;

/** Runs the demo; resolves true when every invariant held (the exit code is 1 otherwise). */
export async function runDemo(options: DemoOptions): Promise<boolean> {
  const out = options.out ?? process.stdout;
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  clearPreviousDemo(dir);
  const storePath = join(dir, "demo.db");
  const store = `sqlite:${storePath}`;
  out.write(introduction(options, shortPath(storePath)));

  const moves = new RunMovesCounter(store);
  const line = new ProgressLine(out);
  let report: ChaosReport;
  try {
    report = await runChaos({
      store,
      dir,
      workers: options.workers,
      runs: options.runs,
      durationMs: options.durationMs,
      seed: options.seed,
      kill: { k8s: 1, sigkill: 1, stop: 1 },
      killIntervalMs: KILL_INTERVAL_MS,
      rollingRestarts: 0,
      // A worker frozen inside a commit would hold SQLite's write lock and stall every
      // process: a stalled store, not the split brain the demo means to show.
      stopOutsideCommits: true,
      onProgress: (p) => {
        if (p.phase !== "starting") moves.refresh(); // the store exists from the chaos on
        line.update(p, moves.moves);
      },
    });
  } finally {
    line.end();
    await moves.close();
  }
  out.write(formatReport(report));
  out.write(`\n${closing(report)}\n`);
  const example = moves.example ?? "chaos-00000";
  out.write(
    `Each run's journal and timeline stay in ${shortPath(storePath)}; for example:\n` +
      `  npx tsx src/cli/main.ts --store sqlite:${shortPath(storePath)} run ${example}\n`,
  );
  return report.ok;
}

function introduction(o: DemoOptions, storePath: string): string {
  return (
    `Baton demo: ${o.workers} worker processes share an embedded SQLite store (${storePath}) and ` +
    `execute ${o.runs} agent runs that move money through a ledger service.\n` +
    `For ${(o.durationMs / 1000).toFixed(0)} s, workers are terminated the ways production does it: ` +
    `drained then SIGTERMed as Kubernetes does (k8s), SIGKILLed, and frozen with SIGSTOP past their lease. ` +
    `Their runs move to other workers (handoffs, takeovers); at the end every run is checked ` +
    `against the ledger and the journal (seed ${o.seed}).\n\n`
  );
}

/** One sentence in plain words: what was done to the workers, and what it cost. */
export function closing(r: ChaosReport): string {
  const t = r.terminations;
  const terminated = t.k8s + t.sigkill + t.stop + t.rolling;
  const facts =
    `${r.runs.submitted} runs, ${terminated} workers killed or frozen mid-run ` +
    `(${t.k8s + t.rolling} drained, ${t.sigkill} SIGKILLed, ${t.stop} frozen), ` +
    `runs moved to another worker ${r.handoffs + r.takeovers} times, ` +
    `${r.runs.lost} runs lost, ${r.duplicates.effectsAskedAgain} effects repeated`;
  return r.ok
    ? `In plain words: ${facts}.`
    : `In plain words: ${facts}; ${r.violations} violation(s) of Baton's guarantees, listed above.`;
}

/**
 * Removes what an earlier demo left in its directory: the store, and the run directory of
 * a demo that was interrupted. Nothing else in `dir` is touched.
 */
function clearPreviousDemo(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (/^demo\.db(-wal|-shm|-journal)?$/.test(name) || name.startsWith("baton-chaos-"))
      rmSync(join(dir, name), { recursive: true, force: true });
  }
}

function shortPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith("..") ? rel : path;
}
