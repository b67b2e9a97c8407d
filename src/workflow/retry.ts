import { z } from "zod";
import { ConfigError } from "./errors.js";

/** How a step is retried when it throws an error that is not terminal. */
export type RetryPolicy = {
  /** Attempts in all, the first included; 1 means no retry. (Default: 3) */
  maxAttempts?: number;
  /** Wait before the second attempt. (Default: 200 ms) */
  initialDelayMs?: number;
  /** Each later wait is the previous one times this. (Default: 2) */
  backoffFactor?: number;
  /** No wait is longer than this. (Default: 30 000 ms) */
  maxDelayMs?: number;
};

export type ResolvedRetryPolicy = Required<RetryPolicy>;

const retrySchema = z
  .object({
    maxAttempts: z.number().int().min(1).default(3),
    initialDelayMs: z.number().min(0).default(200),
    backoffFactor: z.number().min(1).default(2),
    maxDelayMs: z.number().min(0).default(30_000),
  })
  .strict();

export function resolveRetryPolicy(
  policy: RetryPolicy | undefined,
  where: string,
): ResolvedRetryPolicy {
  const parsed = retrySchema.safeParse(policy ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(
      `retry policy of ${where}: ${issue?.path.join(".") ?? ""} ${issue?.message ?? "is invalid"}`,
    );
  }
  return parsed.data;
}

/** The wait after `attempt` failed attempts (1-based), with ±20% jitter so retries spread out. */
export function backoffDelay(
  policy: ResolvedRetryPolicy,
  failedAttempts: number,
  random = Math.random,
): number {
  const base = policy.initialDelayMs * policy.backoffFactor ** (failedAttempts - 1);
  const capped = Math.min(base, policy.maxDelayMs);
  return Math.round(capped * (0.8 + 0.4 * random()));
}
