import { z } from "zod";
import { LifecycleConfigError } from "./errors.js";
import type { PhaseName } from "./types.js";
import { parseOptions } from "./validate.js";

/** Fixed budgets of the phases other than `preStop` (its own option) and `drain` (the rest). */
export interface PhaseBudgetsMs {
  /** Time for `notReady` handlers (Default: 100). */
  notReady?: number;
  /** Time for `stopIntake` handlers: closing listeners, stopping claims (Default: 1000). */
  stopIntake?: number;
  /** Time for `finalize` handlers: releasing leases, flushing journals (Default: 2000). */
  finalize?: number;
  /** Time for the `close` phase: closeables and `close` handlers (Default: 2000). */
  close?: number;
}

/** How the grace budget is carved into phases. Every duration is in milliseconds. */
export interface BudgetOptions {
  /**
   * The whole budget from the first signal to SIGKILL; match Kubernetes
   * `terminationGracePeriodSeconds` × 1000. (Default: 30000; `createLifecycle` reads the
   * env `BATON_GRACE_MS` first.)
   */
  graceMs?: number;
  /** Kept free at the end so the report is written before SIGKILL (Default: 1000). */
  safetyMarginMs?: number;
  /** The `preStop` wait, for load balancers to notice readiness went false (Default: 0). */
  preStopDelayMs?: number;
  /** Budgets of the fixed phases; each field has its own default. */
  phaseBudgetsMs?: PhaseBudgetsMs;
  /** `drain` gets what is left, but never less than this (Default: 1000). */
  minDrainMs?: number;
}

/** Budget options with every field filled in. */
export type ResolvedBudget = Required<Omit<BudgetOptions, "phaseBudgetsMs">> & {
  phaseBudgetsMs: Required<PhaseBudgetsMs>;
};

/** The defaults of {@link BudgetOptions}. */
export const budgetDefaults = {
  graceMs: 30_000,
  safetyMarginMs: 1000,
  preStopDelayMs: 0,
  phaseBudgetsMs: { notReady: 100, stopIntake: 1000, finalize: 2000, close: 2000 },
  minDrainMs: 1000,
} as const satisfies ResolvedBudget;

/** One phase of a {@link BudgetPlan}; times are offsets from the start of shutdown. */
export interface PlannedPhase {
  readonly name: PhaseName;
  /** When the phase starts if every earlier phase uses its whole budget. */
  readonly startMs: number;
  /** When the phase must be over, whatever earlier phases used. */
  readonly deadlineMs: number;
  /** `deadlineMs - startMs`. */
  readonly budgetMs: number;
}

/** The per-phase deadlines carved from one grace budget. */
export interface BudgetPlan {
  readonly graceMs: number;
  readonly safetyMarginMs: number;
  /** `graceMs - safetyMarginMs`: the deadline of the last phase. */
  readonly usableMs: number;
  /** What `drain` gets: the usable time no other phase claims. */
  readonly drainMs: number;
  /** When the watchdog fires: `graceMs - floor(safetyMarginMs / 2)`. */
  readonly watchdogMs: number;
  /** All six phases, in order. */
  readonly phases: readonly PlannedPhase[];
}

const ms = z.number().int().nonnegative();

/** Schema of {@link BudgetOptions}; unknown keys are refused (they are usually typos). */
export const budgetOptionsShape = {
  graceMs: z.number().int().positive().optional(),
  safetyMarginMs: ms.optional(),
  preStopDelayMs: ms.optional(),
  phaseBudgetsMs: z
    .strictObject({
      notReady: ms.optional(),
      stopIntake: ms.optional(),
      finalize: ms.optional(),
      close: ms.optional(),
    })
    .optional(),
  minDrainMs: ms.optional(),
};

/**
 * Carves the grace budget into per-phase deadlines. Pure: the env is not read here.
 * Throws {@link LifecycleConfigError} for a bad value, or when the phases cannot fit,
 * with the arithmetic in the message.
 */
export function planBudget(options: BudgetOptions = {}): BudgetPlan {
  return planResolvedBudget(
    resolveBudget(parseOptions(z.strictObject(budgetOptionsShape), options)),
  );
}

/** Fills in the defaults of already-validated budget options. */
export function resolveBudget(options: BudgetOptions): ResolvedBudget {
  return {
    graceMs: options.graceMs ?? budgetDefaults.graceMs,
    safetyMarginMs: options.safetyMarginMs ?? budgetDefaults.safetyMarginMs,
    preStopDelayMs: options.preStopDelayMs ?? budgetDefaults.preStopDelayMs,
    phaseBudgetsMs: { ...budgetDefaults.phaseBudgetsMs, ...definedOnly(options.phaseBudgetsMs) },
    minDrainMs: options.minDrainMs ?? budgetDefaults.minDrainMs,
  };
}

/** {@link planBudget} for options already validated and resolved. */
export function planResolvedBudget(budget: ResolvedBudget): BudgetPlan {
  const { graceMs, safetyMarginMs, preStopDelayMs, minDrainMs } = budget;
  const { notReady, stopIntake, finalize, close } = budget.phaseBudgetsMs;
  const usableMs = graceMs - safetyMarginMs;
  const fixedMs = notReady + preStopDelayMs + stopIntake + finalize + close;
  if (fixedMs + minDrainMs > usableMs) {
    throw new LifecycleConfigError(
      `graceMs ${graceMs} - safety margin ${safetyMarginMs} = ${usableMs} ms, but ` +
        `notReady ${notReady} + preStop ${preStopDelayMs} + stopIntake ${stopIntake} + ` +
        `finalize ${finalize} + close ${close} + minimum drain ${minDrainMs} = ` +
        `${fixedMs + minDrainMs} ms; raise graceMs (terminationGracePeriodSeconds) or shrink a phase`,
    );
  }
  const drainMs = usableMs - fixedMs;
  const budgets: [PhaseName, number][] = [
    ["notReady", notReady],
    ["preStop", preStopDelayMs],
    ["stopIntake", stopIntake],
    ["drain", drainMs],
    ["finalize", finalize],
    ["close", close],
  ];
  let startMs = 0;
  const phases = budgets.map(([name, budgetMs]): PlannedPhase => {
    const phase = { name, startMs, deadlineMs: startMs + budgetMs, budgetMs };
    startMs += budgetMs;
    return phase;
  });
  const watchdogMs = graceMs - Math.floor(safetyMarginMs / 2);
  return { graceMs, safetyMarginMs, usableMs, drainMs, watchdogMs, phases };
}

function definedOnly<T extends object>(value: T | undefined): Partial<T> {
  if (!value) return {};
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
