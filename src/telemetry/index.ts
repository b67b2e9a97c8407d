/**
 * Traces over `@opentelemetry/api` (a span per run attempt and per step attempt) and the
 * fields of Baton's log lines. Nothing is recorded unless the application installs an
 * OpenTelemetry SDK.
 *
 * @module
 */

export {
  ATTR,
  TRACER_NAME,
  addSpanEvent,
  setOutcome,
  withRunSpan,
  withStepSpan,
} from "./tracing.js";
export type { RunSpanAttributes, SpanOptions, StepSpanAttributes } from "./tracing.js";
export { runLogFields, stepLogFields, traceLogMixin } from "./log-fields.js";
export type { RunLogFields, StepLogFields, TraceLogFields } from "./log-fields.js";
