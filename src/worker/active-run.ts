import { LeaseLostError, StepDeadlineError } from "../workflow/errors.js";
import type { RunControl } from "../workflow/run-context.js";
import type { Lease } from "../store/store.js";
import type { OnShutdown } from "../workflow/types.js";

/**
 * A run this worker is executing, and the ways to stop it:
 * - a handoff at the next step boundary (graceful; `requestHandoff`);
 * - a step deadline during shutdown: steps in flight see their signal abort and may save
 *   progress, then the run is handed off (`beginShutdown`);
 * - an abort now, when the lease is gone (`loseLease`).
 * The lease is trusted until `validUntil`, which each successful renewal pushes forward.
 */
export class ActiveRun implements RunControl {
  private readonly abort = new AbortController();
  private readonly handoff = new AbortController();
  private readonly stepDeadline = new AbortController();
  private deadlineTimer: NodeJS.Timeout | undefined;
  private shutdownDeadline: number | undefined;

  constructor(
    readonly lease: Lease,
    public validUntil: number,
    readonly workflow: string,
  ) {}

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get handoffSignal(): AbortSignal {
    return this.handoff.signal;
  }

  get deadlineSignal(): AbortSignal {
    return this.stepDeadline.signal;
  }

  get deadline(): number | undefined {
    return this.shutdownDeadline;
  }

  get draining(): boolean {
    return this.shutdownDeadline !== undefined;
  }

  requestHandoff(): void {
    this.handoff.abort();
  }

  /**
   * The worker is shutting down. `checkpoint`: hand off at the next step boundary.
   * `drain`: keep going, but start no step expected to outlast `deadline`. Either way, a
   * step still running at `deadline` sees its signal abort, and the run is handed off.
   */
  beginShutdown(mode: OnShutdown, deadline: number): void {
    if (this.shutdownDeadline !== undefined) return;
    this.shutdownDeadline = deadline;
    if (mode !== "drain") this.requestHandoff();
    this.deadlineTimer = setTimeout(
      () => {
        this.requestHandoff();
        this.stepDeadline.abort(
          new StepDeadlineError(
            `run ${this.lease.runId}: the worker is shutting down and the step deadline passed`,
          ),
        );
      },
      Math.max(0, deadline - Date.now()),
    );
    this.deadlineTimer.unref();
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

  /** Clears the deadline timer once the run has left this worker. */
  dispose(): void {
    clearTimeout(this.deadlineTimer);
  }
}
