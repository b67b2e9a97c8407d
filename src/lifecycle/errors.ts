/**
 * Errors raised by `baton/lifecycle`. Each has a stable `name`: compare names, not
 * prototypes, across realms.
 */
import { ConfigError } from "../workflow/errors.js";

/**
 * Invalid lifecycle configuration: an option out of range, or phases that cannot fit
 * in the grace budget. Raised by `createLifecycle` / `planBudget`, never during shutdown.
 * The message names the bad value and the fix. A kind of Baton's `ConfigError`.
 */
export class LifecycleConfigError extends ConfigError {}
