import { inspect } from "node:util";
import {
  SpanKind,
  SpanStatusCode,
  context,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from "@opentelemetry/api";

/**
 * Traces through `@opentelemetry/api` only. Without an SDK installed by the application,
 * the API hands out non-recording spans and every helper here costs next to nothing; with
 * one (and a context manager such as `AsyncLocalStorageContextManager`), each run
 * attempt and each step attempt becomes a span, and spans that user code starts inside a
 * step are its children.
 */

/** The instrumentation scope of Baton's spans. */
export const TRACER_NAME = "baton";

/** Attribute keys on Baton's spans. */
export const ATTR = {
  runId: "baton.run_id",
  workflow: "baton.workflow",
  workflowVersion: "baton.workflow.version",
  step: "baton.step",
  seq: "baton.step.seq",
  kind: "baton.step.kind",
  attempt: "baton.attempt",
  fence: "baton.fence",
  workerId: "baton.worker_id",
  takeover: "baton.takeover",
  interruptions: "baton.interruptions",
  outcome: "baton.outcome",
} as const;

/** What a run-attempt span says: one execution of a run on one worker, under one fence. */
export type RunSpanAttributes = {
  runId: string;
  workflow: string;
  workflowVersion?: number;
  fence: number;
  workerId: string;
  /** Claimed because the previous owner's lease expired. */
  takeover?: boolean;
  /** Handoffs this run has been through before this execution. */
  interruptions?: number;
};

/** What a step-attempt span says. */
export type StepSpanAttributes = {
  runId: string;
  workflow: string;
  step: string;
  /** The step's sequence number in the journal. */
  seq?: number;
  /** `step`, `effect`, `compensation`… (Default: not set) */
  kind?: string;
  attempt: number;
  fence: number;
  workerId: string;
};

export type SpanOptions = {
  /**
   * Asked when `fn` throws: true when the runtime stopped it (a handoff, a step deadline,
   * a lost lease, a cancel) rather than its own failure. Such a span ends with outcome
   * `interrupted` and no error status, since interruptions are not failures.
   * (Default: the error's name is `RunHalted`, `LeaseLostError` or `StepDeadlineError`)
   */
  interrupted?: (error: unknown) => boolean;
  /** (Default: `trace.getTracer("baton")`, the globally installed provider's) */
  tracer?: Tracer;
};

/** Spans whose outcome their caller set with {@link setOutcome}; it is not overwritten. */
const withOutcome = new WeakSet<Span>();

const INTERRUPTIONS = new Set(["RunHalted", "LeaseLostError", "StepDeadlineError"]);

function isInterruption(error: unknown): boolean {
  return error instanceof Error && INTERRUPTIONS.has(error.name);
}

/**
 * Runs `fn` inside a span for one run attempt (`baton.run <workflow>`). The span is a
 * root: a run attempt starts its own trace, not a child of whatever was active when the
 * worker started. It is active while `fn` runs, so step spans are its children. Call
 * {@link setOutcome} from `fn` to record how the execution ended (`completed`, `failed`,
 * `handed-off`…); `failed` sets the error status. A throw is recorded as an exception.
 */
export function withRunSpan<T>(
  attrs: RunSpanAttributes,
  fn: (span: Span) => Promise<T>,
  options: SpanOptions = {},
): Promise<T> {
  const attributes: Attributes = {
    [ATTR.runId]: attrs.runId,
    [ATTR.workflow]: attrs.workflow,
    [ATTR.fence]: attrs.fence,
    [ATTR.workerId]: attrs.workerId,
  };
  if (attrs.workflowVersion !== undefined) attributes[ATTR.workflowVersion] = attrs.workflowVersion;
  if (attrs.takeover !== undefined) attributes[ATTR.takeover] = attrs.takeover;
  if (attrs.interruptions !== undefined) attributes[ATTR.interruptions] = attrs.interruptions;
  return inSpan(`baton.run ${attrs.workflow}`, attributes, true, fn, options);
}

/**
 * Runs `fn` inside a span for one attempt of one step (`baton.step <name>`), a child of
 * the active span (the run's). The span is active while `fn` runs, so spans the step's
 * own code starts (an LLM call, an HTTP request) are its children. Ends with outcome
 * `completed`, `failed` (exception recorded, error status) or `interrupted`.
 */
export function withStepSpan<T>(
  attrs: StepSpanAttributes,
  fn: (span: Span) => Promise<T>,
  options: SpanOptions = {},
): Promise<T> {
  const attributes: Attributes = {
    [ATTR.runId]: attrs.runId,
    [ATTR.workflow]: attrs.workflow,
    [ATTR.step]: attrs.step,
    [ATTR.attempt]: attrs.attempt,
    [ATTR.fence]: attrs.fence,
    [ATTR.workerId]: attrs.workerId,
  };
  if (attrs.seq !== undefined) attributes[ATTR.seq] = attrs.seq;
  if (attrs.kind !== undefined) attributes[ATTR.kind] = attrs.kind;
  return inSpan(`baton.step ${attrs.step}`, attributes, false, fn, options);
}

/**
 * Records how the work of a span ended (`baton.outcome`). `failed` sets the error status,
 * with `error`'s message when given (and records it as an exception).
 */
export function setOutcome(span: Span, outcome: string, error?: unknown): void {
  withOutcome.add(span);
  span.setAttribute(ATTR.outcome, outcome);
  if (outcome === "failed") {
    if (error !== undefined) span.recordException(asException(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
  }
}

/** Adds a timestamped event to the active span, if any (e.g. `progress saved`, `lease lost`). */
export function addSpanEvent(name: string, attributes?: Attributes): void {
  trace.getActiveSpan()?.addEvent(name, attributes);
}

async function inSpan<T>(
  name: string,
  attributes: Attributes,
  root: boolean,
  fn: (span: Span) => Promise<T>,
  options: SpanOptions,
): Promise<T> {
  const tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
  const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes, root });
  const active = trace.setSpan(context.active(), span);
  try {
    const result = await context.with(active, () => fn(span));
    if (!withOutcome.has(span)) span.setAttribute(ATTR.outcome, "completed");
    return result;
  } catch (error) {
    if ((options.interrupted ?? isInterruption)(error)) {
      if (!withOutcome.has(span)) span.setAttribute(ATTR.outcome, "interrupted");
      span.addEvent("interrupted", { "exception.type": errorName(error) });
    } else {
      span.recordException(asException(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
      if (!withOutcome.has(span)) span.setAttribute(ATTR.outcome, "failed");
    }
    throw error;
  } finally {
    span.end();
  }
}

function asException(error: unknown): Error | string {
  return error instanceof Error ? error : describe(error);
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

function errorMessage(error: unknown): string | undefined {
  if (error === undefined) return undefined;
  return error instanceof Error ? `${error.name}: ${error.message}` : describe(error);
}

/** A thrown value that is not an Error, as text (`throw "x"`, `throw { code: 1 }`). */
function describe(value: unknown): string {
  return typeof value === "string" ? value : inspect(value, { depth: 2, breakLength: Infinity });
}
