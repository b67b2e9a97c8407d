/**
 * The demo's agent: a scripted model with realistic latency plans, searches, reads a
 * long batch of sources (saving progress after each), and writes an answer. Every time
 * a step's function starts, it appends a line to the execution log (`BATON_DEMO_LOG`),
 * so the demo can check afterwards that no completed step ever ran again.
 */
import { appendFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { defineWorkflow } from "../workflow/define-workflow.js";
import type { StepContext } from "../workflow/types.js";

export type ExecutionLogLine = {
  run: string;
  step: string;
  pid: number;
  at: number;
  chunk?: number;
};

const LOG = process.env.BATON_DEMO_LOG;
const SOURCES = 8;

function logExecution(s: StepContext, chunk?: number): void {
  if (!LOG) return;
  const line: ExecutionLogLine = {
    run: s.runId,
    step: s.name,
    pid: process.pid,
    at: Date.now(),
    ...(chunk === undefined ? {} : { chunk }),
  };
  appendFileSync(LOG, `${JSON.stringify(line)}\n`);
}

/** A deterministic latency in [min, max) for this run and step, like a model's. */
function latency(runId: string, step: string, min: number, max: number): number {
  let hash = 2166136261;
  for (const c of `${runId}/${step}`) hash = Math.imul(hash ^ c.charCodeAt(0), 16777619);
  return min + ((hash >>> 0) % (max - min));
}

async function model(s: StepContext, min: number, max: number): Promise<void> {
  logExecution(s);
  await sleep(latency(s.runId, s.name, min, max), undefined, { signal: s.signal });
}

export const researchAgent = defineWorkflow(
  { name: "research-agent", version: 1 },
  async (ctx, input: { topic: string }) => {
    const plan = await ctx.step("plan", async (s) => {
      await model(s, 150, 400);
      return {
        queries: [`${input.topic} basics`, `${input.topic} history`, `${input.topic} today`],
      };
    });
    const found: string[] = [];
    for (const [i, query] of plan.queries.entries()) {
      found.push(
        await ctx.step(`search-${i}`, async (s) => {
          await model(s, 60, 200);
          return `results for "${query}"`;
        }),
      );
    }
    const notes = await ctx.step<string[], { read: string[] }>("read-sources", async (s) => {
      logExecution(s);
      const read = [...(s.progress?.read ?? [])];
      for (let chunk = read.length; chunk < SOURCES; chunk++) {
        logExecution(s, chunk);
        await sleep(latency(s.runId, `chunk-${chunk}`, 60, 140), undefined, { signal: s.signal });
        read.push(`note ${chunk} on ${input.topic}`);
        await s.saveProgress({ read });
      }
      return read;
    });
    const answer = await ctx.step("write", async (s) => {
      await model(s, 200, 500);
      return `${input.topic}: ${notes.length} notes from ${found.length} searches`;
    });
    return { answer };
  },
);
