/**
 * A step's abort signal, made only when the step reads it (most steps never do, and an
 * AbortController per step is measurable on the hot path). It aborts with the first of its
 * sources to abort: the run's signal (lease lost, cancelled) or a shutdown's step deadline.
 */
export class LazyStepSignal {
  private controller: AbortController | undefined;
  private readonly followers: Array<[AbortSignal, () => void]> = [];

  constructor(private readonly sources: readonly AbortSignal[]) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = (this.controller = new AbortController());
      for (const source of this.sources) {
        if (source.aborted) {
          controller.abort(source.reason);
          break;
        }
        const follow = () => controller.abort(source.reason);
        source.addEventListener("abort", follow, { once: true });
        this.followers.push([source, follow]);
      }
    }
    return this.controller.signal;
  }

  dispose(): void {
    for (const [source, follow] of this.followers) source.removeEventListener("abort", follow);
  }
}
