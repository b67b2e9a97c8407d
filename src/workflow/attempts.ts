import { faultPoint } from "../internal/fault-points.js";
import { unsafeOutboxDisabled } from "../internal/unsafe-switches.js";
import type { JournalEntry } from "../store/store.js";
import { RetryableError, isTerminal, serializeError } from "./errors.js";
import { LazyStepSignal } from "./lazy-signal.js";
import { backoffDelay, type ResolvedRetryPolicy } from "./retry.js";
import type { RunGuard } from "./run-guard.js";
import { decodeJson, encodeJson } from "./serialize.js";
import type { StepContext } from "./types.js";
import { stepLogFields } from "../telemetry/log-fields.js";
import { withStepSpan } from "../telemetry/tracing.js";

export type AttemptSpec<T> = {
  seq: number;
  name: string;
  kind: "step" | "effect" | "compensation";
  policy: ResolvedRetryPolicy;
  /** The journal entry left by earlier attempts (failures counted, progress saved). */
  recorded: JournalEntry | undefined;
  /**
   * Effects and compensations: the intent (`pending`, this key, this fence) is written
   * before every attempt, so a crash inside the call is seen later as an unknown outcome.
   */
  idempotencyKey?: string;
  /** Extra fields of the context the function sees (`idempotencyKey`, `fence`, …). */
  extra?: Record<string, unknown>;
  invoke: (s: StepContext) => Promise<T> | T;
};

/**
 * Runs a journaled call to completion: attempt, record, and retry by the policy. Returns
 * the recorded value (JSON round-tripped) once it is committed, or throws the error of the
 * final failed attempt once that is committed. An attempt cut short by a shutdown's step
 * deadline is an interruption: nothing is counted and the run halts for a handoff.
 */
export async function runAttempts<T>(guard: RunGuard, spec: AttemptSpec<T>): Promise<T> {
  const { seq, name, kind, policy, idempotencyKey } = spec;
  const { control, deps } = guard;
  const what = `${kind} "${name}" of run ${guard.runId}`;
  const intent = idempotencyKey !== undefined && !unsafeOutboxDisabled();
  let failedAttempts = spec.recorded?.attempts ?? 0;
  let progress = spec.recorded?.progress == null ? undefined : decodeJson(spec.recorded.progress);
  for (;;) {
    const attempt = failedAttempts + 1;
    const startedAt = Date.now();
    const record = (
      fields: Omit<Parameters<RunGuard["write"]>[0], "seq" | "name" | "kind" | "startedAt">,
    ) =>
      guard.write({ seq, name, kind, startedAt, ...(intent ? { idempotencyKey } : {}), ...fields });
    if (intent) {
      faultPoint(`${kind}:before-intent`);
      await record({ status: "pending", attempts: failedAttempts });
      faultPoint(`${kind}:after-intent`);
      // The write may have waited long (a frozen process, a locked database): the call
      // goes out only on a lease this worker can still vouch for.
      guard.assertStillOwner();
    }
    const stepSignal = new LazyStepSignal([control.signal, control.deadlineSignal]);
    const s: StepContext = {
      runId: guard.runId,
      name,
      attempt,
      get signal() {
        return stepSignal.signal;
      },
      get deadline() {
        return control.deadline;
      },
      get progress() {
        return progress;
      },
      saveProgress: async (state: unknown) => {
        const encoded = encodeJson(state, `progress of ${what}`, deps.maxPayloadBytes);
        // An effect stays `pending`: a crash after this is still an unknown outcome.
        await record({
          status: intent ? "pending" : "running",
          progress: encoded,
          attempts: failedAttempts,
        });
        progress = decodeJson(encoded);
      },
    };
    Object.assign(s, spec.extra);
    const seconds = () => (Date.now() - startedAt) / 1000;
    let value: T;
    try {
      value = await withStepSpan(
        {
          runId: guard.runId,
          workflow: deps.workflowName,
          step: name,
          seq,
          kind,
          attempt,
          fence: deps.lease.fence,
          workerId: deps.lease.workerId,
        },
        async () => spec.invoke(s),
        { interrupted: () => control.signal.aborted || control.deadlineSignal.aborted },
      );
    } catch (error) {
      try {
        guard.afterAttempt(true);
      } catch (halt) {
        deps.metrics.stepFinished(deps.workflowName, "interrupted", seconds());
        throw halt;
      }
      failedAttempts = attempt;
      const final = isTerminal(error) || failedAttempts >= policy.maxAttempts;
      deps.metrics.stepFinished(deps.workflowName, final ? "failed" : "retrying", seconds());
      await record({
        status: final ? "failed" : "retrying",
        error: JSON.stringify(serializeError(error)),
        attempts: failedAttempts,
      });
      if (final) throw error;
      const delay =
        error instanceof RetryableError && error.retryAfterMs !== undefined
          ? error.retryAfterMs
          : backoffDelay(policy, failedAttempts);
      // The step's log child is made here, not per attempt: most attempts never log.
      guard.log
        .child(stepLogFields(name, seq, attempt))
        .info({ delayMs: delay, err: error }, `${kind} failed; retrying`);
      await guard.waitBeforeRetry(delay);
      continue;
    } finally {
      stepSignal.dispose();
    }
    try {
      guard.afterAttempt(false);
    } catch (halt) {
      deps.metrics.stepFinished(deps.workflowName, "interrupted", seconds());
      throw halt;
    }
    if (intent) faultPoint(`${kind}:after-run`);
    let output: string | null;
    try {
      output = encodeJson(value, `output of ${what}`, deps.maxPayloadBytes);
    } catch (error) {
      await record({
        status: "failed",
        error: JSON.stringify(serializeError(error)),
        attempts: attempt,
      });
      throw error;
    }
    await record({ status: "completed", output, attempts: attempt });
    deps.metrics.stepFinished(deps.workflowName, "completed", seconds());
    if (intent) faultPoint(`${kind}:after-result`);
    deps.durations.record(deps.workflowName, name, Date.now() - startedAt);
    return decodeJson<T>(output);
  }
}
