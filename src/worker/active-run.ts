import { LeaseLostError } from "../workflow/errors.js";
import type { RunControl } from "../workflow/run-context.js";
import type { Lease } from "../store/store.js";

/**
 * A run this worker is executing, with the two ways to stop it: a handoff at the next
 * step boundary (graceful), or an abort now (the lease is gone). The lease is trusted
 * until `validUntil`, which each successful renewal pushes forward.
 */
export class ActiveRun implements RunControl {
  private readonly abort = new AbortController();
  private readonly handoff = new AbortController();

  constructor(
    readonly lease: Lease,
    public validUntil: number,
  ) {}

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get handoffSignal(): AbortSignal {
    return this.handoff.signal;
  }

  requestHandoff(): void {
    this.handoff.abort();
  }

  assertLeaseValid(): void {
    const now = Date.now();
    if (now > this.validUntil) {
      throw new LeaseLostError(
        `run ${this.lease.runId}: this worker could not renew its lease, which expired ${now - this.validUntil} ms ` +
          `ago; it stops the run (self-fencing) so that a new owner can resume it`,
      );
    }
  }

  loseLease(error: LeaseLostError): void {
    if (!this.abort.signal.aborted) this.abort.abort(error);
  }
}
