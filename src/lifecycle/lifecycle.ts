import type { BudgetPlan } from "./budget.js";
import { LifecycleConfigError } from "./errors.js";
import type { LifecycleOptions } from "./options.js";
import { resolveLifecycleOptions } from "./options.js";
import { preStopWork } from "./pre-stop.js";
import { buildReport, reportLine, watchdogPhase } from "./report.js";
import type { NamedHandler, PhaseWork } from "./run-phase.js";
import { messageOf, runPhase, skippedPhase } from "./run-phase.js";
import type {
  Closeable,
  HandlerPhase,
  LifecycleState,
  PhaseHandler,
  PhaseName,
  PhaseReport,
  ShutdownReport,
} from "./types.js";
import { PHASES } from "./types.js";

/** A graceful-shutdown phase machine. Create one with {@link createLifecycle}. */
export interface Lifecycle {
  /** Where shutdown stands; see {@link LifecycleState}. */
  readonly state: LifecycleState;
  /** True until shutdown starts, false from its first millisecond (wire `/readyz` to it). */
  readonly ready: boolean;
  /** The per-phase deadlines, fixed at construction. */
  readonly plan: BudgetPlan;
  /**
   * Adds work to a phase. Handlers of one phase run concurrently; one still running at
   * the phase deadline sees `ctx.signal` abort and is left behind. Throws if the phase
   * has already started.
   */
  on(phase: HandlerPhase, name: string, handler: PhaseHandler): void;
  /**
   * Registers a dependency to close in the `close` phase. Closeables close one at a
   * time in reverse order of registration (register in the order you open them), before
   * the `close` handlers run. Throws if the `close` phase has already started.
   */
  addCloseable(closeable: Closeable): void;
  /**
   * Starts shutdown and resolves with its report; never rejects. Idempotent: every call
   * returns the same promise. When the process should exit (see `exitOnStop`), `exit`
   * is called with the report's exit code instead.
   */
  stop(reason?: string): Promise<ShutdownReport>;
  /**
   * What a second SIGTERM/SIGINT does: aborts the running phase and skips every phase
   * before `finalize`. Starts shutdown if it has not started. No effect once `finalize`
   * has begun (nothing is left to skip).
   */
  escalate(reason?: string): void;
  /**
   * Listens for SIGTERM and SIGINT: the first starts `stop(signal)`, the next escalates.
   * Idempotent. Once shutdown ends without exiting, the listeners are removed, so a
   * later signal terminates the process as Node would by default.
   */
  installSignalHandlers(): void;
  /** Stops listening for SIGTERM and SIGINT. */
  removeSignalHandlers(): void;
}

const SIGNALS = ["SIGTERM", "SIGINT"] as const;
const FINALIZE = PHASES.indexOf("finalize");
const HANDLER_PHASES: readonly string[] = PHASES.filter((p) => p !== "preStop");

const STATE_OF: Record<PhaseName, LifecycleState> = {
  notReady: "not-ready",
  preStop: "pre-stop",
  stopIntake: "stopping-intake",
  drain: "draining",
  finalize: "finalizing",
  close: "closing",
};

/**
 * Creates a lifecycle in state `running`. Options are validated and the budget planned
 * here: a configuration whose phases cannot fit throws {@link LifecycleConfigError}.
 * Nothing is listened to until {@link Lifecycle.installSignalHandlers}.
 */
export function createLifecycle(options: LifecycleOptions = {}): Lifecycle {
  const config = resolveLifecycleOptions(options);
  const { plan } = config;
  const handlers = new Map<HandlerPhase, NamedHandler[]>();
  const closeables: Closeable[] = [];
  const details: Record<string, unknown> = {};
  const phases: PhaseReport[] = [];
  const escalation = new AbortController();
  const halt = new AbortController();

  let state: LifecycleState = "running";
  let phaseIndex = -1;
  let phaseStartedAt = 0;
  let reason = "";
  let startedAt = 0;
  let escalated = false;
  let exitOnStop = false;
  let finished = false;
  let stopping: Promise<ShutdownReport> | undefined;
  let resolveStop: (report: ShutdownReport) => void = () => {};
  let watchdog: NodeJS.Timeout | undefined;
  let signalsInstalled = false;

  const onSignal = (signal: NodeJS.Signals) => {
    if (!stopping) return void lifecycle.stop(signal);
    if (!finished) return lifecycle.escalate(`second ${signal}`);
    // Shutdown is over but the process lives on: let the signal do what it would by default.
    lifecycle.removeSignalHandlers();
    process.kill(process.pid, signal);
  };

  const refuseIfStarted = (phase: PhaseName, what: string) => {
    const index = PHASES.indexOf(phase);
    if (index <= phaseIndex) {
      throw new Error(
        `lifecycle: cannot add ${what} to the ${phase} phase: shutdown has already reached ` +
          `${PHASES[phaseIndex]}; register it before stop()`,
      );
    }
  };

  const report = (watchdogFired: boolean, inProgress: PhaseReport[] = []) =>
    buildReport({
      reason,
      startedAt,
      phases: [...phases, ...inProgress],
      escalated,
      watchdog: watchdogFired,
      details,
    });

  const finish = (result: ShutdownReport) => {
    if (finished) return;
    finished = true;
    clearTimeout(watchdog);
    state = "stopped";
    try {
      config.onReport?.(result);
    } catch (error) {
      process.stderr.write(`lifecycle: onReport threw: ${messageOf(error)}\n`);
    }
    if (config.logReport) process.stderr.write(`${reportLine(result)}\n`);
    resolveStop(result);
    if (exitOnStop) config.exit(result.exitCode);
    else lifecycle.removeSignalHandlers();
  };

  const fireWatchdog = () => {
    halt.abort();
    const current = PHASES[phaseIndex];
    const running =
      current === undefined || phases.length > phaseIndex
        ? []
        : [watchdogPhase(current, phaseStartedAt, plan.watchdogMs)];
    finish(report(true, running));
  };

  const workOf = (phase: PhaseName): PhaseWork => {
    if (phase === "preStop") return preStopWork(plan);
    return {
      closeables: phase === "close" ? [...closeables].reverse() : [],
      handlers: handlers.get(phase) ?? [],
    };
  };

  const shutdown = async () => {
    for (const [index, planned] of plan.phases.entries()) {
      if (halt.signal.aborted) return;
      phaseIndex = index;
      phaseStartedAt = Date.now();
      if (escalated && index < FINALIZE) {
        phases.push(skippedPhase(planned.name));
        continue;
      }
      state = STATE_OF[planned.name];
      const phase = await runPhase(
        {
          phase: planned.name,
          deadline: startedAt + planned.deadlineMs,
          enforceDeadline: planned.name !== "preStop",
          interrupts: index < FINALIZE ? [escalation.signal, halt.signal] : [halt.signal],
          report: (key, value) => {
            details[key] = value;
          },
        },
        workOf(planned.name),
      );
      if (halt.signal.aborted) return;
      phases.push(phase);
    }
    finish(report(false));
  };

  const lifecycle: Lifecycle = {
    get state() {
      return state;
    },
    get ready() {
      return state === "running";
    },
    plan,
    on(phase, name, handler) {
      if (!HANDLER_PHASES.includes(phase)) {
        throw new LifecycleConfigError(
          `lifecycle.on: ${JSON.stringify(phase)} is not a phase that takes handlers; ` +
            `use one of ${HANDLER_PHASES.join(", ")}`,
        );
      }
      if (typeof handler !== "function") {
        throw new LifecycleConfigError(
          `lifecycle.on(${phase}, ${name}): handler is not a function`,
        );
      }
      refuseIfStarted(phase, `handler ${JSON.stringify(name)}`);
      const list = handlers.get(phase) ?? [];
      list.push({ name, handler });
      handlers.set(phase, list);
    },
    addCloseable(closeable) {
      if (typeof closeable?.close !== "function") {
        throw new LifecycleConfigError("lifecycle.addCloseable: expected { name, close(signal) }");
      }
      refuseIfStarted("close", `closeable ${JSON.stringify(closeable.name)}`);
      closeables.push(closeable);
    },
    stop(why = "stop() called") {
      if (stopping) return stopping;
      state = "not-ready";
      reason = why;
      startedAt = Date.now();
      exitOnStop = config.exitOnStop ?? signalsInstalled;
      stopping = new Promise((resolve) => {
        resolveStop = resolve;
      });
      watchdog = setTimeout(fireWatchdog, plan.watchdogMs);
      // The phase timers keep the process alive while shutdown runs; the watchdog need not.
      watchdog.unref();
      shutdown().catch((error: unknown) => {
        details["lifecycleError"] = messageOf(error);
        finish(report(false));
      });
      return stopping;
    },
    escalate(why = "escalate() called") {
      if (!stopping) void lifecycle.stop(why);
      if (escalated || finished || phaseIndex >= FINALIZE) return;
      escalated = true;
      escalation.abort(why);
    },
    installSignalHandlers() {
      if (signalsInstalled) return;
      signalsInstalled = true;
      for (const signal of SIGNALS) process.on(signal, onSignal);
    },
    removeSignalHandlers() {
      if (!signalsInstalled) return;
      signalsInstalled = false;
      for (const signal of SIGNALS) process.off(signal, onSignal);
    },
  };
  return lifecycle;
}
