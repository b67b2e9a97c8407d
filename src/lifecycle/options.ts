import { z } from "zod";
import type { BudgetOptions, BudgetPlan } from "./budget.js";
import { budgetOptionsShape, planResolvedBudget, resolveBudget } from "./budget.js";
import { LifecycleConfigError } from "./errors.js";
import type { ShutdownReport } from "./types.js";
import { parseOptions } from "./validate.js";

/** Options of `createLifecycle`: the budget, plus how the report and the exit are handled. */
export interface LifecycleOptions extends BudgetOptions {
  /**
   * Call `exit(report.exitCode)` once shutdown is over. (Default: true when signal
   * handlers are installed at the time shutdown starts, false otherwise, so that a
   * programmatic `stop()` leaves the process to its caller.)
   */
  exitOnStop?: boolean;
  /** How to exit; injectable for tests. (Default: `process.exit`.) */
  exit?: (code: number) => void;
  /** Called once with the report, when shutdown ends or the watchdog fires. */
  onReport?: (report: ShutdownReport) => void;
  /** Write the report to stderr as one JSON line. (Default: true.) */
  logReport?: boolean;
}

/** Lifecycle options validated once, with every default applied and the budget planned. */
export interface ResolvedLifecycleOptions {
  readonly plan: BudgetPlan;
  /** `undefined` means "exit when signal handlers are installed". */
  readonly exitOnStop: boolean | undefined;
  readonly exit: (code: number) => void;
  readonly onReport: ((report: ShutdownReport) => void) | undefined;
  readonly logReport: boolean;
}

const fn = z.custom<(...args: never[]) => unknown>((v) => typeof v === "function", {
  message: "expected a function",
});

const lifecycleSchema = z.strictObject({
  ...budgetOptionsShape,
  exitOnStop: z.boolean().optional(),
  exit: fn.optional(),
  onReport: fn.optional(),
  logReport: z.boolean().optional(),
});

/** The env variable that sets the default `graceMs`. */
export const GRACE_ENV = "BATON_GRACE_MS";

/**
 * Validates `options` (zod), applies the defaults and plans the budget. `graceMs` comes
 * from the option, else from `env.BATON_GRACE_MS`, else 30000. Throws
 * {@link LifecycleConfigError} naming the bad value.
 */
export function resolveLifecycleOptions(
  options: LifecycleOptions = {},
  env: Record<string, string | undefined> = process.env,
): ResolvedLifecycleOptions {
  const parsed = parseOptions(lifecycleSchema, options);
  const graceMs = parsed.graceMs ?? graceFromEnv(env);
  const plan = planResolvedBudget(resolveBudget({ ...parsed, graceMs }));
  return {
    plan,
    exitOnStop: parsed.exitOnStop,
    exit: options.exit ?? ((code: number) => process.exit(code)),
    onReport: options.onReport,
    logReport: parsed.logReport ?? true,
  };
}

function graceFromEnv(env: Record<string, string | undefined>): number | undefined {
  const raw = env[GRACE_ENV]?.trim();
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value <= 0 || !Number.isSafeInteger(value)) {
    throw new LifecycleConfigError(
      `${GRACE_ENV} = ${JSON.stringify(raw)} is not a positive whole number of milliseconds; ` +
        `set it to terminationGracePeriodSeconds × 1000 (e.g. 30000) or unset it`,
    );
  }
  return value;
}
