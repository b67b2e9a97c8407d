/**
 * A latch the claim loop sleeps on. `notify()` wakes the current wait, or the next one
 * if nobody is waiting, so a wake-up that arrives between two waits is never lost.
 */
export class Wakeup {
  private pending = false;
  private wake: (() => void) | undefined;

  notify(): void {
    if (this.wake) this.wake();
    else this.pending = true;
  }

  /** Resolves on `notify()` or after `ms`, whichever is first. */
  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.pending = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
