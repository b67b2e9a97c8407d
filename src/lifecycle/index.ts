/**
 * `baton/lifecycle`: graceful shutdown for any Node service, as a phase machine
 * (notReady → preStop → stopIntake → drain → finalize → close) with per-phase deadlines
 * carved from one grace budget.
 *
 * @example
 * ```ts
 * import { attachHttpServer, createLifecycle, pgPoolCloseable } from "baton/lifecycle";
 *
 * const lifecycle = createLifecycle({ graceMs: 30_000, preStopDelayMs: 5_000 });
 * lifecycle.addCloseable(pgPoolCloseable(pool));
 * attachHttpServer(lifecycle, server);
 * lifecycle.on("drain", "jobs", ({ signal }) => jobs.drain(signal));
 * lifecycle.installSignalHandlers();
 * ```
 *
 * @module
 */

export { createLifecycle } from "./lifecycle.js";
export type { Lifecycle } from "./lifecycle.js";
export { planBudget, budgetDefaults } from "./budget.js";
export type { BudgetOptions, BudgetPlan, PhaseBudgetsMs, PlannedPhase } from "./budget.js";
export { GRACE_ENV } from "./options.js";
export type { LifecycleOptions } from "./options.js";
export { LifecycleConfigError } from "./errors.js";
export { PHASES } from "./types.js";
export type {
  Closeable,
  HandlerOutcome,
  HandlerPhase,
  HandlerReport,
  LifecycleState,
  PhaseContext,
  PhaseHandler,
  PhaseName,
  PhaseReport,
  ShutdownReport,
} from "./types.js";
export { attachHttpServer, httpServerCloseable } from "./adapters/http-server.js";
export type {
  HttpServerCloseable,
  HttpServerCloseableOptions,
  HttpServerLike,
} from "./adapters/http-server.js";
export { pgPoolCloseable } from "./adapters/pg-pool.js";
export type { PgPoolLike } from "./adapters/pg-pool.js";
export { ioredisCloseable } from "./adapters/ioredis.js";
export type { IoredisLike } from "./adapters/ioredis.js";
export { natsCloseable } from "./adapters/nats.js";
export type { NatsConnectionLike } from "./adapters/nats.js";
