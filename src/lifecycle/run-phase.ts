import type {
  Closeable,
  HandlerOutcome,
  HandlerReport,
  PhaseContext,
  PhaseHandler,
  PhaseName,
  PhaseReport,
} from "./types.js";

/** A handler with the name it is reported under. */
export interface NamedHandler {
  readonly name: string;
  readonly handler: PhaseHandler;
}

/** How one phase is to be run. */
export interface PhaseRun {
  readonly phase: PhaseName;
  /** Epoch milliseconds. */
  readonly deadline: number;
  /** Abort the phase at `deadline` (false for a phase that is a bounded wait itself). */
  readonly enforceDeadline: boolean;
  /** Any of these aborting interrupts the phase (escalation, the watchdog). */
  readonly interrupts: readonly AbortSignal[];
  /** Where `ctx.report(key, value)` goes. */
  readonly report: (key: string, value: unknown) => void;
}

/** The work of one phase: closeables first, one at a time, then handlers, concurrently. */
export interface PhaseWork {
  readonly closeables?: readonly Closeable[];
  readonly handlers: readonly NamedHandler[];
}

interface OpenPhase {
  readonly ctx: PhaseContext;
  readonly enforceDeadline: boolean;
  /** Resolves when the phase signal aborts. */
  readonly aborted: Promise<void>;
  /** Why the signal aborted, once it has. */
  cutBy: "deadline" | "interrupt" | undefined;
}

/**
 * Runs one phase and reports it. Resolves when all work has settled, or as soon as the
 * phase signal aborts (deadline or interrupt): work still running then is left behind
 * and recorded as `timed-out` or `interrupted`. Never rejects.
 */
export async function runPhase(run: PhaseRun, work: PhaseWork): Promise<PhaseReport> {
  const startedAt = Date.now();
  const controller = new AbortController();
  const open: OpenPhase = {
    cutBy: undefined,
    enforceDeadline: run.enforceDeadline,
    aborted: new Promise((resolve) =>
      controller.signal.addEventListener("abort", () => resolve(), { once: true }),
    ),
    ctx: {
      phase: run.phase,
      signal: controller.signal,
      deadline: run.deadline,
      remainingMs: () => Math.max(0, run.deadline - Date.now()),
      report: run.report,
    },
  };
  const cut = (by: "deadline" | "interrupt", message: string, name: string) => {
    if (controller.signal.aborted) return;
    open.cutBy = by;
    controller.abort(new DOMException(`${run.phase} phase: ${message}`, name));
  };
  const onInterrupt = () => cut("interrupt", "interrupted", "AbortError");
  for (const signal of run.interrupts) signal.addEventListener("abort", onInterrupt);
  if (run.interrupts.some((signal) => signal.aborted)) onInterrupt();
  const timer = run.enforceDeadline
    ? setTimeout(
        () => cut("deadline", "deadline reached", "TimeoutError"),
        Math.max(0, run.deadline - startedAt),
      )
    : undefined;

  const results: HandlerReport[] = [];
  try {
    for (const closeable of work.closeables ?? []) {
      results.push(await runOne(open, closeable.name, (ctx) => closeable.close(ctx.signal)));
    }
    results.push(...(await Promise.all(work.handlers.map((h) => runOne(open, h.name, h.handler)))));
  } finally {
    clearTimeout(timer);
    for (const signal of run.interrupts) signal.removeEventListener("abort", onInterrupt);
  }
  return {
    phase: run.phase,
    startedAt,
    durationMs: Date.now() - startedAt,
    timedOut: results.some((r) => r.outcome === "timed-out"),
    interrupted: results.some((r) => r.outcome === "interrupted"),
    skipped: false,
    errors: results.flatMap((r) => (r.error === undefined ? [] : [`${r.name}: ${r.error}`])),
    handlers: results,
  };
}

/** The report of a phase that escalation skipped. */
export function skippedPhase(phase: PhaseName): PhaseReport {
  return {
    phase,
    startedAt: Date.now(),
    durationMs: 0,
    timedOut: false,
    interrupted: false,
    skipped: true,
    errors: [],
    handlers: [],
  };
}

type Settled = { ok: true } | { ok: false; error: unknown };

/**
 * Runs one piece of work until it settles or the phase aborts. Work started after the
 * abort (a closeable reached past the deadline) is still called, so that it can close
 * forcefully, but never counts as `ok`; nor does work that settles after its deadline.
 */
async function runOne(
  open: OpenPhase,
  name: string,
  handler: PhaseHandler,
): Promise<HandlerReport> {
  const started = Date.now();
  const abortedAtStart = open.ctx.signal.aborted;
  // Runs the handler synchronously up to its first await, so that work called after the
  // abort (a forced close) has started before the machine moves on.
  const settled = (async (): Promise<Settled> => {
    try {
      await handler(open.ctx);
      return { ok: true };
    } catch (error) {
      return { ok: false, error };
    }
  })();
  const first = abortedAtStart
    ? undefined
    : await Promise.race([settled, open.aborted.then(() => undefined)]);
  if (first) {
    // Settled, but after its deadline (a stalled event loop kept the timer from firing).
    const late = open.enforceDeadline && Date.now() > open.ctx.deadline;
    return handlerReport(name, late ? "timed-out" : first.ok ? "ok" : "failed", started, first);
  }
  // Cut off: give it one turn of the event loop to settle, to keep its error message.
  const late = await Promise.race([settled, nextTurn()]);
  const outcome: HandlerOutcome = open.cutBy === "deadline" ? "timed-out" : "interrupted";
  return handlerReport(name, outcome, started, late);
}

function handlerReport(
  name: string,
  outcome: HandlerOutcome,
  started: number,
  settled: Settled | undefined,
): HandlerReport {
  const durationMs = Date.now() - started;
  if (settled && !settled.ok) return { name, outcome, durationMs, error: messageOf(settled.error) };
  return { name, outcome, durationMs };
}

function nextTurn(): Promise<undefined> {
  return new Promise((resolve) => setImmediate(() => resolve(undefined)));
}

/** A one-line description of a thrown value. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
