import { ConfigError } from "./errors.js";
import { resolveRetryPolicy } from "./retry.js";
import type { Workflow, WorkflowFunction, WorkflowOptions } from "./types.js";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const SHUTDOWN_MODES = ["checkpoint", "drain", "compensate"];

/** Declares a workflow. The definition is inert until a worker that knows it runs it. */
export function defineWorkflow<I, O>(
  options: WorkflowOptions,
  fn: WorkflowFunction<I, O>,
): Workflow<I, O> {
  if (typeof options?.name !== "string" || !NAME.test(options.name)) {
    throw new ConfigError(
      `workflow name ${JSON.stringify(options?.name)} is invalid; use 1-128 letters, digits, ".", "_", ":" or "-"`,
    );
  }
  const version = options.version ?? 1;
  if (!Number.isInteger(version) || version < 1) {
    throw new ConfigError(
      `workflow "${options.name}": version ${String(version)} must be a positive integer`,
    );
  }
  const onShutdown = options.onShutdown ?? "checkpoint";
  if (!SHUTDOWN_MODES.includes(onShutdown)) {
    throw new ConfigError(
      `workflow "${options.name}": onShutdown "${String(onShutdown)}" must be one of ${SHUTDOWN_MODES.join(", ")}`,
    );
  }
  if (typeof fn !== "function")
    throw new ConfigError(`workflow "${options.name}" needs a function`);
  if (options.retry) resolveRetryPolicy(options.retry, `workflow "${options.name}"`);
  const abandonAfterMs = options.abandonAfterMs;
  if (abandonAfterMs !== undefined && !(Number.isInteger(abandonAfterMs) && abandonAfterMs > 0)) {
    throw new ConfigError(
      `workflow "${options.name}": abandonAfterMs ${String(abandonAfterMs)} must be a positive whole number of milliseconds, or left out`,
    );
  }
  return Object.freeze({
    kind: "baton.workflow",
    name: options.name,
    version,
    onShutdown,
    retry: options.retry,
    abandonAfterMs,
    fn,
  });
}

export function isWorkflow(value: unknown): value is Workflow {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { kind?: unknown }).kind === "baton.workflow"
  );
}
