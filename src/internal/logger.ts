import { pino, type Logger } from "pino";
import { traceLogMixin } from "../telemetry/log-fields.js";

/**
 * The runtime's logger: JSON lines on stderr, quiet by default (`warn`);
 * `BATON_LOG_LEVEL` (trace, debug, info, warn, error, silent) changes it.
 */
export function createLogger(bindings: Record<string, unknown> = {}): Logger {
  return pino(
    { name: "baton", level: process.env.BATON_LOG_LEVEL ?? "warn", mixin: traceLogMixin },
    pino.destination(2),
  ).child(bindings);
}
