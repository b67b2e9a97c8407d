/**
 * The workload both systems run: a workflow of three steps, each an async function that
 * returns a small value at once, so what is measured is the runtime's own cost of making
 * each step durable. Each system builds it with its own API and reports into a `Probe`.
 */
import { percentile } from "../stats.js";

/** A monotonic clock with sub-millisecond resolution. */
export const now = () => performance.now();

/**
 * What a workflow reports while it runs: the gap between one step function returning and
 * the next one being called (the durable commit of the first step's result plus whatever
 * the runtime does before starting the next), two per workflow.
 */
export class Probe {
  readonly gaps: number[] = [];

  /** Returns the three step functions for one workflow execution. */
  steps(): [() => Promise<number>, () => Promise<number>, () => Promise<number>] {
    let lastExit: number | undefined;
    const step = (value: number) => () => {
      if (lastExit !== undefined) this.gaps.push(now() - lastExit);
      lastExit = now();
      return Promise.resolve(value);
    };
    return [step(1), step(2), step(3)];
  }

  take(): number[] {
    return this.gaps.splice(0);
  }
}

/** One system under test: runs one workflow to its durable end, then resolves. */
export type System = {
  readonly name: string;
  readonly probe: Probe;
  run(key: string): Promise<void>;
  close(): Promise<void>;
};

/** Raw figures of one closed-loop pass. */
export type Pass = {
  workflows: number;
  seconds: number;
  /** From the call that starts a workflow to its durable end, as the caller sees it, ms. */
  latencies: number[];
  /** The gaps between consecutive steps inside the workflows (see `Probe`), ms. */
  gaps: number[];
};

/** Longest a single workflow may take before the benchmark gives up. */
const WORKFLOW_TIMEOUT_MS = 30_000;

/** `promise`, or a rejection naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `concurrency` callers, each starting a workflow and waiting for its durable end before
 * starting the next, until `workflows` have completed (a closed loop). A workflow that
 * takes more than 30 s fails the pass.
 */
export async function closedLoop(
  system: System,
  concurrency: number,
  workflows: number,
  keyPrefix: string,
): Promise<Pass> {
  let next = 0;
  const latencies: number[] = [];
  system.probe.take();
  const startedAt = now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < workflows) {
        const key = `${keyPrefix}-${next++}`;
        const t0 = now();
        await within(system.run(key), WORKFLOW_TIMEOUT_MS, `${system.name} workflow ${key}`);
        latencies.push(now() - t0);
      }
    }),
  );
  const seconds = (now() - startedAt) / 1000;
  return { workflows, seconds, latencies, gaps: system.probe.take() };
}

/** Several passes of one system at one concurrency, summarised. */
export function summarisePasses(passes: readonly Pass[]) {
  const workflows = passes.reduce((n, p) => n + p.workflows, 0);
  const seconds = passes.reduce((n, p) => n + p.seconds, 0);
  const latencies = passes.flatMap((p) => p.latencies).sort((a, b) => a - b);
  const gaps = passes.flatMap((p) => p.gaps).sort((a, b) => a - b);
  return {
    workflows,
    seconds,
    workflowsPerSecond: workflows / seconds,
    latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) },
    stepGapMs: { n: gaps.length, p50: percentile(gaps, 0.5), p99: percentile(gaps, 0.99) },
  };
}
