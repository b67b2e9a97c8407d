import { z } from "zod";
import type { BudgetOptions } from "../lifecycle/budget.js";
import type { Lifecycle } from "../lifecycle/lifecycle.js";
import type { ManagementServerOptions } from "../http/management-server.js";
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
  /** On SIGTERM/SIGINT: shut down gracefully, then exit; a second signal skips to finalize. (Default: true) */
  handleSignals?: boolean;
  /**
   * The grace budget from SIGTERM to SIGKILL: match `terminationGracePeriodSeconds`.
   * (Default: env BATON_GRACE_MS, else 30 000 ms)
   */
  graceMs?: number;
  /** Wait after readiness goes false, before intake stops, for load balancers. (Default: 0) */
  preStopDelayMs?: number;
  /** The rest of the budget's carving; see `baton/lifecycle`. */
  budget?: Omit<BudgetOptions, "graceMs" | "preStopDelayMs">;
  /**
   * Serve `/healthz`, `/readyz` and `POST /drain` (port 9464 on 127.0.0.1 unless given).
   * (Default: off for a worker made in code; `baton worker` turns it on)
   */
  http?: ManagementServerOptions | false;
  /** Share a service's lifecycle instead of making one; the worker adds its phases to it. */
  lifecycle?: Lifecycle;
  /** The worker's id in the store. (Default: host-pid-random) */
  id?: string;
};

export type ResolvedWorkerOptions = {
  concurrency: number;
  leaseMs: number;
  heartbeatMs: number;
  pollMs: number;
  handleSignals: boolean;
  budget: BudgetOptions;
  http: ManagementServerOptions | undefined;
  lifecycle: Lifecycle | undefined;
  id: string | undefined;
};

const schema = z
  .object({
    concurrency: z.number().int().min(1).max(10_000).default(10),
    leaseMs: z.number().int().min(100).default(10_000),
    heartbeatMs: z.number().int().min(10).optional(),
    pollMs: z.number().int().min(1).default(1_000),
    handleSignals: z.boolean().default(true),
    graceMs: z.number().int().min(1).optional(),
    preStopDelayMs: z.number().int().min(0).optional(),
    budget: z.record(z.string(), z.unknown()).optional(),
    http: z.union([z.literal(false), z.record(z.string(), z.unknown())]).optional(),
    lifecycle: z
      .custom<Lifecycle>((v) => typeof v === "object" && v !== null && "stop" in v)
      .optional(),
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
  const { heartbeatMs, graceMs, preStopDelayMs, http, ...rest } = parsed.data;
  const beat = heartbeatMs ?? Math.floor(rest.leaseMs / 3);
  if (beat > rest.leaseMs / 3) {
    throw new ConfigError(
      `worker option heartbeatMs ${beat} is more than a third of leaseMs ${rest.leaseMs}; a single late beat would lose the lease. Use at most ${Math.floor(rest.leaseMs / 3)}`,
    );
  }
  return {
    concurrency: rest.concurrency,
    leaseMs: rest.leaseMs,
    heartbeatMs: beat,
    pollMs: rest.pollMs,
    handleSignals: rest.handleSignals,
    budget: {
      ...(options.budget ?? {}),
      ...(graceMs === undefined ? {} : { graceMs }),
      ...(preStopDelayMs === undefined ? {} : { preStopDelayMs }),
    },
    http:
      http === false || http === undefined ? undefined : (options.http as ManagementServerOptions),
    lifecycle: options.lifecycle,
    id: rest.id,
  };
}
