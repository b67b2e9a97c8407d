import type { Logger } from "pino";
import type { Store } from "../store/store.js";
import { LeaseLostError } from "../workflow/errors.js";
import type { ActiveRun } from "./active-run.js";

/**
 * Renews every lease of a worker with one store statement per beat. A lease missing from
 * the store's answer was lost (a takeover or a cancel): that run aborts at once. When
 * renewals fail, each run's lease is trusted only until it would have expired, after
 * which the run stops itself (self-fencing) rather than race a new owner.
 */
export class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly workerId: string,
    private readonly leaseMs: number,
    private readonly intervalMs: number,
    private readonly runs: Map<string, ActiveRun>,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.beating ??= this.beat().finally(() => (this.beating = undefined));
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beating;
  }

  /** One renewal of every lease held. */
  async beat(): Promise<void> {
    const startedAt = Date.now();
    const runs = [...this.runs.values()].filter((run) => this.stillVouchedFor(run));
    let held: Array<{ runId: string; fence: number }>;
    try {
      held = await this.store.renewLeases(
        this.workerId,
        runs.map((run) => run.lease),
        this.leaseMs,
      );
    } catch (error) {
      this.log.warn(
        { err: error },
        "lease renewal failed; runs stop themselves when their leases expire",
      );
      for (const run of runs) {
        try {
          run.assertLeaseValid();
        } catch (expired) {
          run.loseLease(expired as LeaseLostError);
        }
      }
      return;
    }
    const renewed = new Set(held.map((h) => `${h.runId}:${h.fence}`));
    for (const run of runs) {
      if (renewed.has(`${run.lease.runId}:${run.lease.fence}`)) {
        run.validUntil = startedAt + this.leaseMs;
      } else {
        run.loseLease(
          new LeaseLostError(
            `run ${run.lease.runId}: lease with fence ${run.lease.fence} was not renewed; the run was taken over or cancelled`,
          ),
        );
      }
    }
  }

  /**
   * A run is renewed only while its lease is still trusted. A run that already stopped, or
   * whose lease ran out while the process could not renew it (a freeze, a partition), is
   * never renewed again: it stops itself now, and the store's expired lease lets another
   * worker take it over instead of this one extending a lease it stopped vouching for.
   */
  private stillVouchedFor(run: ActiveRun): boolean {
    if (run.signal.aborted) return false;
    try {
      run.assertLeaseValid();
      return true;
    } catch (expired) {
      run.loseLease(expired as LeaseLostError);
      return false;
    }
  }
}
