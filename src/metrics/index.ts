/**
 * Baton's Prometheus metrics (DESIGN.md §8): a `BatonMetrics` on its own registry, the
 * `GET /metrics` route for the management server, and the orphaned-runs helper.
 *
 * @module
 */

export { BatonMetrics, shutdownOutcome } from "./baton-metrics.js";
export type { BatonMetricsOptions, MetricsStore, RecoveryTimer } from "./baton-metrics.js";
export { metricsRoute } from "./metrics-route.js";
export type { MetricsRouteOptions } from "./metrics-route.js";
export { countOrphanedRuns, isOrphaned } from "./orphaned-runs.js";
export type { OrphanSource } from "./orphaned-runs.js";
export {
  COMPENSATION_OUTCOMES,
  DRAIN_OUTCOMES,
  EFFECT_RESOLUTIONS,
  EXECUTION_OUTCOMES,
  HANDOFF_REASONS,
  RECOVERY_CAUSES,
  SHUTDOWN_OUTCOMES,
  STEP_OUTCOMES,
} from "./labels.js";
export type {
  CompensationOutcome,
  DrainOutcome,
  EffectResolution,
  ExecutionOutcome,
  HandoffReason,
  RecoveryCause,
  ShutdownOutcome,
  StepOutcome,
} from "./labels.js";
