/**
 * Types of `baton/lifecycle`, the graceful-shutdown phase machine.
 *
 * Glossary:
 * - **grace budget** (`graceMs`): the time between the first SIGTERM and the SIGKILL
 *   that follows it (Kubernetes `terminationGracePeriodSeconds`). Shutdown must be
 *   over before it runs out.
 * - **safety margin**: the slice of the budget kept free so that the report is written
 *   and the process exits before SIGKILL could land.
 * - **phase**: one step of shutdown, in this order: `notReady` → `preStop` →
 *   `stopIntake` → `drain` → `finalize` → `close`. Each has a deadline carved from the
 *   grace budget; time a phase does not use flows to the next one.
 * - **handler**: work added to a phase with `on()`. Handlers of one phase run
 *   concurrently; one still running at the phase deadline sees its `signal` abort and
 *   is left behind (recorded as timed out).
 * - **closeable**: a dependency closed in the `close` phase, in reverse order of
 *   registration, one at a time.
 * - **escalation**: a second SIGTERM/SIGINT (or `escalate()`): the running phase is
 *   aborted and the machine skips to `finalize`.
 * - **watchdog**: a last timer at `graceMs - safetyMarginMs / 2` that writes the report
 *   and exits with code 1 if shutdown has not finished by then.
 */

/** The shutdown phases, in the order they run. */
export const PHASES = ["notReady", "preStop", "stopIntake", "drain", "finalize", "close"] as const;

/** One shutdown phase. */
export type PhaseName = (typeof PHASES)[number];

/** Phases that accept handlers (`preStop` is a plain delay). */
export type HandlerPhase = Exclude<PhaseName, "preStop">;

/**
 * Where a lifecycle stands. Moves only forward, one state per phase.
 * - `running`: serving normally; `ready` is true.
 * - `not-ready`: shutdown has begun; readiness answers false (e.g. `/readyz` → 503)
 *   and `notReady` handlers run (e.g. mark the worker row `draining`).
 * - `pre-stop`: waiting `preStopDelayMs` so load balancers notice before intake stops.
 * - `stopping-intake`: listeners close, claiming stops; in-flight HTTP responses get
 *   `Connection: close`.
 * - `draining`: work in flight runs to its next boundary or until the drain deadline.
 * - `finalizing`: leases are released, journals flushed, the report prepared.
 * - `closing`: closeables close in reverse order of registration.
 * - `stopped`: the report is written; nothing runs any more.
 */
export type LifecycleState =
  | "running"
  | "not-ready"
  | "pre-stop"
  | "stopping-intake"
  | "draining"
  | "finalizing"
  | "closing"
  | "stopped";

/** What a phase handler receives. */
export interface PhaseContext {
  /** The phase being run. */
  readonly phase: PhaseName;
  /**
   * Aborts at the phase deadline (reason: a `TimeoutError` DOMException) or when
   * shutdown escalates (reason: an `AbortError` DOMException). Stop promptly when it
   * does: the machine has already moved on.
   */
  readonly signal: AbortSignal;
  /** The phase deadline, epoch milliseconds. */
  readonly deadline: number;
  /** Milliseconds left until `deadline`, never negative. */
  remainingMs(): number;
  /** Adds `key: value` to the shutdown report's `details` (last write wins). */
  report(key: string, value: unknown): void;
}

/** Work added to a phase. May be sync or async; a throw is recorded, never rethrown. */
export type PhaseHandler = (ctx: PhaseContext) => void | Promise<void>;

/**
 * A dependency to close in the `close` phase. `close` should finish gracefully, and
 * when `signal` aborts (close deadline reached, or already aborted when called) it
 * should close forcefully at once.
 */
export interface Closeable {
  readonly name: string;
  close(signal: AbortSignal): void | Promise<void>;
}

/**
 * How one handler or closeable ended.
 * - `ok`: finished before the deadline.
 * - `failed`: threw or rejected before the deadline.
 * - `timed-out`: still running at the phase deadline; its signal was aborted.
 * - `interrupted`: still running when shutdown escalated or the watchdog fired.
 */
export type HandlerOutcome = "ok" | "failed" | "timed-out" | "interrupted";

/** One handler's or closeable's line in a {@link PhaseReport}. */
export interface HandlerReport {
  readonly name: string;
  readonly outcome: HandlerOutcome;
  readonly durationMs: number;
  /** The error message, when it threw (before or just after its deadline). */
  readonly error?: string;
}

/** What happened in one phase. */
export interface PhaseReport {
  readonly phase: PhaseName;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  readonly durationMs: number;
  /** A handler was still running at the phase deadline. */
  readonly timedOut: boolean;
  /** Cut short by escalation or by the watchdog. */
  readonly interrupted: boolean;
  /** Never run: escalation skipped past it (`durationMs` 0). */
  readonly skipped: boolean;
  /** `"<handler>: <message>"` for each handler that threw. */
  readonly errors: readonly string[];
  readonly handlers: readonly HandlerReport[];
}

/** The outcome of a shutdown, resolved by `stop()` and passed to `onReport`. */
export interface ShutdownReport {
  /** What started shutdown: the signal name (`"SIGTERM"`) or the `stop(reason)` text. */
  readonly reason: string;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  readonly phases: readonly PhaseReport[];
  readonly durationMs: number;
  /** A second signal (or `escalate()`) skipped phases to reach `finalize`. */
  readonly escalated: boolean;
  /** The watchdog fired: shutdown did not finish in `graceMs - safetyMarginMs / 2`. */
  readonly watchdog: boolean;
  /** 0 when every phase ran and finished cleanly; 1 otherwise. */
  readonly exitCode: 0 | 1;
  /** Values handlers gave through `ctx.report(key, value)`. */
  readonly details: Record<string, unknown>;
}
