import { z } from "zod";
import { ConfigError } from "../workflow/errors.js";
import type { ChaosProgress } from "./progress.js";

/** Relative weights of the kinds of termination the harness picks from. */
export type KillWeights = { k8s: number; sigkill: number; stop: number };

/** What the scripted agent does; ranges are [min, max] in ms. */
export type Workload = {
  /** One piece of model work. (Default: [15, 60]) */
  modelMs: [number, number];
  /** The ledger's answer time; the operation is applied on arrival. (Default: [10, 80]) */
  ledgerMs: [number, number];
  /** The durable sleep. (Default: [200, 800]) */
  sleepMs: [number, number];
  /** Pieces of the long step, each saving progress. (Default: 8) */
  sources: number;
  /** Share of runs whose report fails for good and must be compensated. (Default: 0.15) */
  failRate: number;
};

export type ChaosOptions = {
  /**
   * A store URL. SQLite: a file that does not exist yet (a chaos run never writes into a
   * database that has data). Postgres: the run uses a fresh schema and drops it after.
   * (Default: a fresh SQLite file in a temp directory)
   */
  store?: string;
  /** Worker processes kept running, as a Deployment's replicas. (Default: 4) */
  workers?: number;
  /** Runs to submit, spread over the first 90% of the duration. (Default: 300) */
  runs?: number;
  /** How long workers are terminated for; then the harness waits for every run to end. (Default: 30 000) */
  durationMs?: number;
  /** Weights of the kinds of termination. (Default: 1 each) */
  kill?: Partial<KillWeights>;
  /** Each worker's grace budget, and when a k8s termination SIGKILLs. (Default: 10 000) */
  graceMs?: number;
  /** Makes the kill schedule, the victims and the inputs reproducible. (Default: random, printed) */
  seed?: number;
  /** (Default: 2 000) */
  leaseMs?: number;
  /** (Default: 200) */
  pollMs?: number;
  /** Runs each worker executes at once. (Default: 32) */
  concurrency?: number;
  /** Mean time between terminations. (Default: duration / 30, within 1.5 to 5 s) */
  killIntervalMs?: number;
  /** Rolling restarts of every worker during the run. (Default: 1) */
  rollingRestarts?: number;
  /** Longest wait for every run to end after the chaos. (Default: 60 000 + duration) */
  settleTimeoutMs?: number;
  /** Where the store (SQLite), the execution log and the ledger dump go. (Default: a temp dir) */
  dir?: string;
  /** Keep the store, its schema and the logs afterwards. (Default: false) */
  keep?: boolean;
  /** Extra environment of the workers (e.g. `BATON_UNSAFE_DISABLE_FENCING=1`). */
  env?: Record<string, string>;
  /** Node flags of the child processes. (Default: this process's, so tsx carries over) */
  nodeArgs?: string[];
  workload?: Partial<Workload>;
  /**
   * SQLite: a worker is never left frozen inside a commit (it would hold the write lock and
   * stall every process, so no other worker could take its runs: a stalled store, not a
   * split brain); it is continued and frozen again a moment later. For aiming at fencing.
   * (Default: false: freezes land wherever they land)
   */
  stopOutsideCommits?: boolean;
  /** Called about once a second while the run goes on. */
  onProgress?: (progress: ChaosProgress) => void;
};

export type ResolvedChaosOptions = Required<
  Omit<ChaosOptions, "store" | "dir" | "onProgress" | "kill" | "workload" | "killIntervalMs">
> & {
  store: string | undefined;
  dir: string | undefined;
  onProgress: ((progress: ChaosProgress) => void) | undefined;
  kill: KillWeights;
  workload: Workload;
  killIntervalMs: number;
};

const range = z
  .tuple([z.number().int().min(0), z.number().int().min(0)])
  .refine(([a, b]) => a <= b, "min must not exceed max");

const schema = z
  .object({
    store: z.string().min(1).optional(),
    workers: z.number().int().min(2).max(64).default(4),
    runs: z.number().int().min(1).max(1_000_000).default(300),
    durationMs: z.number().int().min(1_000).default(30_000),
    kill: z
      .object({
        k8s: z.number().min(0).default(1),
        sigkill: z.number().min(0).default(1),
        stop: z.number().min(0).default(1),
      })
      .strict()
      .default({ k8s: 1, sigkill: 1, stop: 1 }),
    graceMs: z.number().int().min(1).default(10_000),
    seed: z.number().int().min(0).max(0xffffffff).optional(),
    leaseMs: z.number().int().min(300).default(2_000),
    pollMs: z.number().int().min(5).default(200),
    concurrency: z.number().int().min(1).max(1_000).default(32),
    killIntervalMs: z.number().int().min(100).optional(),
    rollingRestarts: z.number().int().min(0).max(10).default(1),
    settleTimeoutMs: z.number().int().min(1_000).optional(),
    dir: z.string().min(1).optional(),
    keep: z.boolean().default(false),
    stopOutsideCommits: z.boolean().default(false),
    env: z.record(z.string(), z.string()).default({}),
    nodeArgs: z.array(z.string()).optional(),
    workload: z
      .object({
        modelMs: range.default([15, 60]),
        ledgerMs: range.default([10, 80]),
        sleepMs: range.default([200, 800]),
        sources: z.number().int().min(1).max(100).default(8),
        failRate: z.number().min(0).max(1).default(0.15),
      })
      .strict()
      .default({
        modelMs: [15, 60],
        ledgerMs: [10, 80],
        sleepMs: [200, 800],
        sources: 8,
        failRate: 0.15,
      }),
    onProgress: z.custom<(p: ChaosProgress) => void>((v) => typeof v === "function").optional(),
  })
  .strict();

/**
 * The worker's shutdown phases need this much of the grace budget with their default
 * budgets (safety 1 000 + notReady 100 + stopIntake 1 000 + finalize 2 000 + close 2 000 +
 * minimum drain 1 000 ms); a smaller grace is refused before any process starts.
 */
export const MIN_GRACE_MS = 7_100;

/** Validates the options once and fills in the defaults. */
export function resolveChaosOptions(options: ChaosOptions): ResolvedChaosOptions {
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(
      `chaos option ${issue?.path.join(".") || "options"}: ${issue?.message ?? "invalid"}`,
    );
  }
  const o = parsed.data;
  if (o.graceMs < MIN_GRACE_MS) {
    throw new ConfigError(
      `chaos --grace ${o.graceMs} ms is too short for a worker's shutdown phases, which need at least ${MIN_GRACE_MS} ms ` +
        `(safety 1000 + notReady 100 + stopIntake 1000 + finalize 2000 + close 2000 + drain 1000); use --grace ${MIN_GRACE_MS} or more`,
    );
  }
  return {
    ...o,
    store: o.store,
    dir: o.dir,
    onProgress: o.onProgress,
    seed: o.seed ?? Math.floor(Math.random() * 0xffffffff),
    killIntervalMs:
      o.killIntervalMs ?? Math.round(Math.min(5_000, Math.max(1_500, o.durationMs / 30))),
    settleTimeoutMs: o.settleTimeoutMs ?? 60_000 + o.durationMs,
    nodeArgs: o.nodeArgs ?? process.execArgv,
  };
}

/** `120s`, `2m`, `1500ms`, `1h`; a bare number is seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(text.trim());
  if (!match) {
    throw new ConfigError(`duration "${text}" is not one Baton reads; use e.g. 120s, 2m or 1500ms`);
  }
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] ?? "s"] ?? 1_000;
  return Math.round(Number(match[1]) * unit);
}

/** `k8s:2,sigkill:1,stop:1`; kinds left out weigh 0. */
export function parseKillWeights(text: string): KillWeights {
  const weights: KillWeights = { k8s: 0, sigkill: 0, stop: 0 };
  for (const part of text
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [kind, weight = "1"] = part.split(":");
    const w = Number(weight);
    if (!kind || !(kind in weights) || !Number.isFinite(w) || w < 0) {
      throw new ConfigError(
        `--kill "${text}": "${part}" is not KIND:WEIGHT with KIND one of k8s, sigkill, stop and a weight >= 0`,
      );
    }
    weights[kind as keyof KillWeights] = w;
  }
  return weights;
}
