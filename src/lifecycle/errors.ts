/**
 * Errors raised by `baton/lifecycle`. Each has a stable `name`: compare names, not
 * prototypes, across realms.
 */

/**
 * Invalid lifecycle configuration: an option out of range, or phases that cannot fit
 * in the grace budget. Raised by `createLifecycle` / `planBudget`, never during shutdown.
 * The message names the bad value and the fix.
 */
export class LifecycleConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LifecycleConfigError";
  }
}
