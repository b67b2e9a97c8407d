import { isSpanContextValid, trace } from "@opentelemetry/api";

/**
 * The fields every log line the runtime writes about a run carries, with the names the
 * runtime already uses (`runId`, `workerId`, camelCase). Bind them once with
 * `log.child(...)` where the run, or the step attempt, begins.
 */

/** Bound where a run's execution begins (one claim, one fence, one worker). */
export type RunLogFields = {
  runId: string;
  workflow: string;
  fence: number;
  workerId: string;
};

/** Bound, on top of the run's fields, for the lines of one step attempt. */
export type StepLogFields = {
  step: string;
  seq: number;
  attempt: number;
};

export function runLogFields(
  lease: { runId: string; fence: number; workerId: string },
  workflow: string,
): RunLogFields {
  return { runId: lease.runId, workflow, fence: lease.fence, workerId: lease.workerId };
}

export function stepLogFields(step: string, seq: number, attempt: number): StepLogFields {
  return { step, seq, attempt };
}

/** What {@link traceLogMixin} adds: the active span's ids, named as OpenTelemetry's log data model names them. */
export type TraceLogFields = { trace_id?: string; span_id?: string; trace_flags?: string };

/**
 * A pino `mixin`: adds the active span's `trace_id`, `span_id` and `trace_flags` to every
 * line written while a span is active (inside `withRunSpan`/`withStepSpan`), so a log
 * line leads to its trace. Adds nothing when no SDK is installed.
 *
 * @example pino({ mixin: traceLogMixin })
 */
export function traceLogMixin(): TraceLogFields {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (!spanContext || !isSpanContextValid(spanContext)) return {};
  return {
    trace_id: spanContext.traceId,
    span_id: spanContext.spanId,
    trace_flags: `0${spanContext.traceFlags.toString(16)}`,
  };
}
