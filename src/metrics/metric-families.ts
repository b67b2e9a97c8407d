import { Counter, Histogram, type Registry } from "prom-client";
import {
  COMPENSATION_OUTCOMES,
  DRAIN_OUTCOMES,
  EFFECT_RESOLUTIONS,
  HANDOFF_REASONS,
  RECOVERY_CAUSES,
  SHUTDOWN_OUTCOMES,
} from "./labels.js";

/** Steps run from milliseconds (a tool call) to an hour (a long generation). */
const STEP_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
];
/** A fenced write or a claim statement: sub-millisecond on SQLite, a round trip on Postgres. */
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** A handoff should resume in under 50 ms; a crash within a lease (10 s) plus a poll. */
const RECOVERY_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60, 120, 300,
];
/** A shutdown has to fit in the grace period: 30 s by default. */
const SHUTDOWN_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 25, 30, 45, 60, 120];
const PHASE_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60];

/**
 * The families the runtime records into (DESIGN.md §8), registered on `registry`. Series
 * of closed label sets are created at zero, so `rate()` and `absent()` behave from the
 * start. The gauges read at scrape time are `BatonMetrics`'s own.
 */
export type RecordedFamilies = {
  steps: Counter<"workflow" | "outcome">;
  stepDuration: Histogram<"workflow">;
  checkpointDuration: Histogram;
  claimLatency: Histogram;
  handoffs: Counter<"reason">;
  recovery: Histogram<"cause">;
  staleWrites: Counter;
  effects: Counter<"resolution">;
  compensations: Counter<"outcome">;
  compensationsRegistered: Counter;
  executions: Counter<"workflow" | "outcome">;
  shutdownDuration: Histogram;
  phaseDuration: Histogram<"phase">;
  shutdowns: Counter<"outcome">;
  drainRuns: Counter<"outcome">;
};

export function createRecordedFamilies(registry: Registry): RecordedFamilies {
  const registers = [registry];
  const families: RecordedFamilies = {
    steps: new Counter({
      name: "baton_steps_total",
      help: "Step attempts that ended, by workflow and outcome (completed, retrying, failed, interrupted).",
      labelNames: ["workflow", "outcome"],
      registers,
    }),
    stepDuration: new Histogram({
      name: "baton_step_duration_seconds",
      help: "Duration of step attempts, whatever their outcome, by workflow.",
      labelNames: ["workflow"],
      buckets: STEP_BUCKETS,
      registers,
    }),
    checkpointDuration: new Histogram({
      name: "baton_checkpoint_duration_seconds",
      help: "Duration of fenced journal writes: step results, failures and saved progress.",
      buckets: STORE_BUCKETS,
      registers,
    }),
    claimLatency: new Histogram({
      name: "baton_claim_latency_seconds",
      help: "Duration of one claim statement against the store (claimRuns round trip).",
      buckets: STORE_BUCKETS,
      registers,
    }),
    handoffs: new Counter({
      name: "baton_handoffs_total",
      help: "Runs released for another worker to resume at once (by a shutting-down worker, or after a store error), by reason.",
      labelNames: ["reason"],
      registers,
    }),
    recovery: new Histogram({
      name: "baton_recovery_seconds",
      help: "Time from a run's interruption (handoff) or lease expiry (crash) until its next step starts on its new owner.",
      labelNames: ["cause"],
      buckets: RECOVERY_BUCKETS,
      registers,
    }),
    staleWrites: new Counter({
      name: "baton_stale_writes_rejected_total",
      help: "Writes the store refused because the writer's fence was stale (another owner, or a cancel).",
      registers,
    }),
    effects: new Counter({
      name: "baton_effects_total",
      help: "Effects by resolution: executed, replayed, and the unknown outcomes (checked-done, checked-not-done, rerun-unchecked).",
      labelNames: ["resolution"],
      registers,
    }),
    compensations: new Counter({
      name: "baton_compensations_total",
      help: "Compensations run, by outcome.",
      labelNames: ["outcome"],
      registers,
    }),
    compensationsRegistered: new Counter({
      name: "baton_compensations_registered_total",
      help: "Completed steps and effects that carry a compensation (what a rollback would have to undo).",
      registers,
    }),
    executions: new Counter({
      name: "baton_run_executions_total",
      help: "Executions of a run on this worker (one per claim) that ended, by workflow and outcome.",
      labelNames: ["workflow", "outcome"],
      registers,
    }),
    shutdownDuration: new Histogram({
      name: "baton_shutdown_duration_seconds",
      help: "Time from the start of a shutdown (SIGTERM, POST /drain, stop()) to its end.",
      buckets: SHUTDOWN_BUCKETS,
      registers,
    }),
    phaseDuration: new Histogram({
      name: "baton_shutdown_phase_duration_seconds",
      help: "Duration of each shutdown phase that ran (notReady, preStop, stopIntake, drain, finalize, close).",
      labelNames: ["phase"],
      buckets: PHASE_BUCKETS,
      registers,
    }),
    shutdowns: new Counter({
      name: "baton_shutdowns_total",
      help: "Shutdowns that ended, by outcome (clean, unclean, escalated, watchdog).",
      labelNames: ["outcome"],
      registers,
    }),
    drainRuns: new Counter({
      name: "baton_drain_runs_total",
      help: "Runs in flight when a shutdown began, by what became of them during the drain.",
      labelNames: ["outcome"],
      registers,
    }),
  };
  // Series of closed label sets exist from the start, so rate() and absent() behave.
  for (const reason of HANDOFF_REASONS) families.handoffs.inc({ reason }, 0);
  for (const cause of RECOVERY_CAUSES) families.recovery.zero({ cause });
  for (const resolution of EFFECT_RESOLUTIONS) families.effects.inc({ resolution }, 0);
  for (const outcome of COMPENSATION_OUTCOMES) families.compensations.inc({ outcome }, 0);
  for (const outcome of DRAIN_OUTCOMES) families.drainRuns.inc({ outcome }, 0);
  for (const outcome of SHUTDOWN_OUTCOMES) families.shutdowns.inc({ outcome }, 0);
  return families;
}
