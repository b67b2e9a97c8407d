import { z } from "zod";
import { ConfigError } from "../workflow/errors.js";

export type WorkerOptions = {
  /** Runs executed at once. (Default: 10) */
  concurrency?: number;
  /**
   * How long a claim lasts without renewal. A crashed worker's runs are resumed elsewhere
   * within about this long. (Default: 10 000 ms)
   */
  leaseMs?: number;
  /** How often leases are renewed; at most a third of `leaseMs`. (Default: leaseMs / 3) */
  heartbeatMs?: number;
  /**
   * Longest wait between two looks for work when nothing wakes the worker sooner
   * (other processes' commits and local starts wake it at once). (Default: 1000 ms)
   */
  pollMs?: number;
  /** Stop gracefully on SIGTERM and SIGINT. (Default: true) */
  handleSignals?: boolean;
  /** The worker's id in the store. (Default: host-pid-random) */
  id?: string;
};

export type ResolvedWorkerOptions = Required<Omit<WorkerOptions, "id">> & {
  id: string | undefined;
};

const schema = z
  .object({
    concurrency: z.number().int().min(1).max(10_000).default(10),
    leaseMs: z.number().int().min(100).default(10_000),
    heartbeatMs: z.number().int().min(10).optional(),
    pollMs: z.number().int().min(1).default(1_000),
    handleSignals: z.boolean().default(true),
    id: z.string().min(1).max(200).optional(),
  })
  .strict();

/** Validates worker options once, at the boundary, and fills in the defaults. */
export function resolveWorkerOptions(options: WorkerOptions): ResolvedWorkerOptions {
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.join(".") || "options";
    throw new ConfigError(
      `worker option ${key}: ${issue?.message ?? "invalid"} (got ${JSON.stringify((options as Record<string, unknown>)[key])})`,
    );
  }
  const { heartbeatMs, ...rest } = parsed.data;
  const beat = heartbeatMs ?? Math.floor(rest.leaseMs / 3);
  if (beat > rest.leaseMs / 3) {
    throw new ConfigError(
      `worker option heartbeatMs ${beat} is more than a third of leaseMs ${rest.leaseMs}; a single late beat would lose the lease. Use at most ${Math.floor(rest.leaseMs / 3)}`,
    );
  }
  return { ...rest, heartbeatMs: beat, id: rest.id };
}
