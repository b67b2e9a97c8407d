/**
 * Workflows for benchmarks that run real worker processes. Each step start is appended
 * to `BATON_BENCH_LOG` as `runId step pid epochMs` (sub-millisecond), so latencies can be
 * measured from outside the workers.
 */
import { appendFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { defineWorkflow } from "../src/index.js";

function logStart(runId: string, step: string): void {
  const log = process.env.BATON_BENCH_LOG;
  if (log)
    appendFileSync(
      log,
      `${runId} ${step} ${process.pid} ${performance.timeOrigin + performance.now()}\n`,
    );
}

/** `steps` steps of `stepMs` each, handed off at a boundary on shutdown. */
export const loop = defineWorkflow(
  { name: "bench-loop" },
  async (ctx, input: { steps: number; stepMs: number }) => {
    for (let i = 0; i < input.steps; i++) {
      await ctx.step(`s${i}`, async (s) => {
        logStart(s.runId, s.name);
        if (input.stepMs > 0) await sleep(input.stepMs);
        return i;
      });
    }
    return input.steps;
  },
);
