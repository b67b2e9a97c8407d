import type { Store } from "./store/store.js";
import { TERMINAL_STATUSES } from "./store/store.js";
import { CancelledError, ValidationError } from "./workflow/errors.js";
import { runError, toRunSummary, type RunSummary } from "./run-view.js";

export type ResultOptions = {
  /** Give up waiting after this long (the run goes on). (Default: no limit) */
  timeoutMs?: number;
  /** Stop waiting when this aborts. */
  signal?: AbortSignal;
};

/** A started run. `created` is false when `start` found a run with the same id. */
export class RunHandle<O = unknown> {
  constructor(
    private readonly store: Store,
    readonly id: string,
    readonly workflow: string,
    readonly created: boolean,
  ) {}

  /** The run as stored now. */
  async status(): Promise<RunSummary> {
    const run = await this.store.getRun(this.id);
    if (!run) throw new ValidationError(`run ${this.id} does not exist`);
    return toRunSummary(run);
  }

  /**
   * Waits for the run to end and returns its output; rejects with its error if it failed
   * (an instance of Baton's class when it is one), or a CancelledError if it was cancelled.
   */
  async result(options: ResultOptions = {}): Promise<O> {
    const giveUpAt = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    let delay = 10;
    for (;;) {
      const run = await this.status();
      if (TERMINAL_STATUSES.includes(run.status)) {
        if (run.status === "completed") return run.output as O;
        if (run.status === "cancelled") throw new CancelledError(`run ${this.id} was cancelled`);
        throw runError(run);
      }
      options.signal?.throwIfAborted();
      if (Date.now() >= giveUpAt) {
        throw new Error(
          `run ${this.id} is still ${run.status} after ${options.timeoutMs} ms; it goes on`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, giveUpAt - Date.now())));
      delay = Math.min(delay * 2, 200);
    }
  }
}
