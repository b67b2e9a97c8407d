/**
 * The workflow the chaos harness runs on its workers: an agent that plans with a scripted
 * model, researches in a long step that saves progress, moves money between two ledger
 * accounts (a debit and a credit, each an effect with `check` and `compensate`), waits
 * on a durable timer, and writes a report — which, for a seeded share of runs, is rejected
 * for good (a TerminalError), so the money must be moved back by the compensations.
 *
 * Every step function, effect `run` and compensation appends a `start` line to the
 * execution log, and every piece of model work a `chunk` line with its tokens, so the
 * harness can see from outside what ran where, even on a worker that was SIGKILLed.
 * Latencies come from a hash of the run and step, so a step takes as long on every worker.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { defineWorkflow } from "../workflow/define-workflow.js";
import { TerminalError } from "../workflow/errors.js";
import type { EffectContext, EffectSpec, StepContext } from "../workflow/types.js";
import { appendExecLine } from "./exec-log.js";
import type { AppliedOp, OpKind } from "./ledger.js";
import { applyOp, checkOp } from "./ledger-client.js";
import { hashedBetween } from "./prng.js";

export const CHAOS_WORKFLOW = "chaos-agent";

export type ChaosRunInput = {
  /** The ledger's base URL. */
  ledger: string;
  from: string;
  to: string;
  amount: number;
  /** The report is rejected for good: the run must end `compensated`. */
  fail: boolean;
  /** The durable sleep between the transfer and the report. */
  sleepMs: number;
  /** Range of one piece of model work, ms. */
  modelMs: [number, number];
  /** Range of the ledger's answer time, ms (the operation is applied on arrival). */
  ledgerMs: [number, number];
  /** Pieces of the long research step (each saves progress). */
  sources: number;
};

export type ChaosRunOutput = { debit: number; credit: number; report: string };

/** Tokens one piece of model work produces. */
export function chunkTokens(runId: string, step: string, chunk: number): number {
  return hashedBetween(`${runId}/${step}/${chunk}/tokens`, 20, 120);
}

function started(s: StepContext, from?: number): void {
  appendExecLine({
    run: s.runId,
    step: s.name,
    type: "start",
    attempt: s.attempt,
    ...(from === undefined ? {} : { from }),
  });
}

/** One piece of scripted model work: waits its latency (honouring the signal), logs its tokens. */
async function modelChunk(s: StepContext, chunk: number, range: [number, number]): Promise<number> {
  const ms = hashedBetween(`${s.runId}/${s.name}/${chunk}`, range[0], range[1]);
  await sleep(ms, undefined, { signal: s.signal });
  const tokens = chunkTokens(s.runId, s.name, chunk);
  appendExecLine({ run: s.runId, step: s.name, type: "chunk", chunk, tokens });
  return tokens;
}

async function model(s: StepContext, chunks: number, range: [number, number]): Promise<number> {
  let tokens = 0;
  for (let chunk = 0; chunk < chunks; chunk++) tokens += await modelChunk(s, chunk, range);
  return tokens;
}

const asked = (e: EffectContext) => ({ key: e.idempotencyKey, runId: e.runId, fence: e.fence });

/** A debit or credit: applied once by key, fenced, checkable, and undone by its compensation. */
function moneyEffect(input: ChaosRunInput, kind: "debit" | "credit"): EffectSpec<AppliedOp> {
  const account = kind === "debit" ? input.from : input.to;
  const amount = kind === "debit" ? -input.amount : input.amount;
  const undo: OpKind = kind === "debit" ? "undo-debit" : "undo-credit";
  return {
    run: async (e) => {
      started(e);
      // A retry after an error may follow a call that did reach the ledger: ask first.
      if (e.attempt > 1) {
        const found = await checkOp(input.ledger, asked(e), e.signal);
        if (found) return found;
      }
      const delayMs = hashedBetween(e.idempotencyKey, input.ledgerMs[0], input.ledgerMs[1]);
      return applyOp(
        input.ledger,
        { key: e.idempotencyKey, runId: e.runId, fence: e.fence, account, amount, kind, delayMs },
        e.signal,
      );
    },
    check: async (e) => {
      const found = await checkOp(input.ledger, asked(e), e.signal);
      return found ? { done: true, result: found } : { done: false };
    },
    compensate: async (c, op) => {
      started(c);
      // A compensation interrupted mid-call runs again with the same key: ask first.
      if (await checkOp(input.ledger, asked(c), c.signal)) return;
      await applyOp(
        input.ledger,
        {
          key: c.idempotencyKey,
          runId: c.runId,
          fence: c.fence,
          account: op.account,
          amount: -op.amount,
          kind: undo,
        },
        c.signal,
      );
    },
  };
}

export const chaosAgent = defineWorkflow(
  { name: CHAOS_WORKFLOW, version: 1 },
  async (ctx, input: ChaosRunInput): Promise<ChaosRunOutput> => {
    const plan = await ctx.step("plan", async (s) => {
      started(s);
      const tokens = await model(s, 4, input.modelMs);
      return { tokens, task: `move ${input.amount} from ${input.from} to ${input.to}` };
    });
    const sources = await ctx.step<number, { done: number }>("research", async (s) => {
      const from = s.progress?.done ?? 0;
      started(s, from);
      for (let chunk = from; chunk < input.sources; chunk++) {
        await modelChunk(s, chunk, input.modelMs);
        await s.saveProgress({ done: chunk + 1 });
      }
      return input.sources;
    });
    const debit = await ctx.effect("debit", moneyEffect(input, "debit"));
    const credit = await ctx.effect("credit", moneyEffect(input, "credit"));
    await ctx.sleep("settle", input.sleepMs);
    const report = await ctx.step("report", async (s) => {
      started(s);
      await model(s, 3, input.modelMs);
      if (input.fail) {
        throw new TerminalError(
          `run ${s.runId}: the reviewer rejected the report on "${plan.task}"; undo the transfer`,
        );
      }
      return `${plan.task}: done after ${sources} sources`;
    });
    return { debit: debit.opId, credit: credit.opId, report };
  },
);
