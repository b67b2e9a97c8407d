/**
 * Baton's error classes. Each has a stable `name` (realm-safe: compare names, not
 * prototypes, across processes) and keeps the original error as `cause`.
 *
 * Retry semantics of a step that throws:
 * - {@link TerminalError}, {@link ValidationError}: never retried; the step fails.
 * - {@link RetryableError}: retried, after `retryAfterMs` when given.
 * - anything else: retried by the step's retry policy.
 */

export type ErrorOptions = { cause?: unknown };

/** Base class so callers can recognise every error Baton raises. */
export class BatonError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A failure that retrying cannot fix. The step (and, unless caught, the run) fails at once. */
export class TerminalError extends BatonError {}

/** A failure worth retrying; `retryAfterMs` overrides the policy's backoff for the next attempt. */
export class RetryableError extends BatonError {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options?: ErrorOptions & { retryAfterMs?: number }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * Replay met a step whose name differs from the journal at the same sequence number:
 * the workflow code changed under a run in flight. The run is parked (status `failed`,
 * journal untouched) rather than corrupted.
 */
export class NonDeterminismError extends BatonError {}

/**
 * This worker no longer owns the run (its lease expired and another worker claimed it,
 * or the run was cancelled). The run aborts locally; nothing more is written.
 */
export class LeaseLostError extends BatonError {}

/**
 * The reason a step's `signal` aborts when its worker is shutting down and the step
 * deadline has passed. The step may save progress; the run is handed off and the
 * interrupted attempt does not count against its retries.
 */
export class StepDeadlineError extends BatonError {}

/** Bad input refused at the door: unknown workflow, a value that is not JSON, a payload too large. */
export class ValidationError extends BatonError {}

/** Invalid configuration: a malformed store URL, an option out of range, a missing module. */
export class ConfigError extends BatonError {}

/**
 * A compensation kept failing after its retries. The run is parked (status `failed`,
 * journal intact) for a person to look at; the compensations before it have run, the ones
 * after it have not.
 */
export class CompensationFailedError extends BatonError {}

/** The run was cancelled; `run.result()` rejects with this. */
export class CancelledError extends BatonError {}

/** The form in which an error is kept in the store. */
export type SerializedError = { name: string; message: string; stack?: string };

const knownErrors: Record<string, new (message: string) => Error> = {
  TerminalError,
  RetryableError,
  NonDeterminismError,
  LeaseLostError,
  StepDeadlineError,
  ValidationError,
  ConfigError,
  CancelledError,
  CompensationFailedError,
};

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    return {
      name: error.name,
      message: error.message,
      ...(error.stack ? { stack: error.stack } : {}),
    };
  }
  return { name: "Error", message: String(error) };
}

/** Rebuilds a stored error, as an instance of Baton's class when the name is one of ours. */
export function deserializeError(stored: SerializedError): Error {
  const ErrorClass = knownErrors[stored.name];
  const error = ErrorClass ? new ErrorClass(stored.message) : new Error(stored.message);
  error.name = stored.name;
  if (stored.stack) error.stack = stored.stack;
  return error;
}

/** True for errors that a retry policy must not retry. */
export function isTerminal(error: unknown): boolean {
  return (
    error instanceof TerminalError ||
    error instanceof ValidationError ||
    error instanceof NonDeterminismError
  );
}
