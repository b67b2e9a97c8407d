/**
 * Group commit for the PostgreSQL store: writes of one kind (step writes, run endings,
 * releases, new runs) issued by many runs at about the same time are sent as one statement
 * over arrays, so they share one round trip, one plan and one commit instead of paying one
 * each. It is what lets 32 runs step at once without 32 statements queueing for a pool of 10.
 *
 * Semantics are unchanged for each write: the statement checks each row on its own (its
 * run, its fence), each caller gets its own answer, and every promise resolves only after
 * the statement that holds its row has committed. A batch is sent as soon as nothing of its
 * kind is in flight: on the next turn of the event loop when the line is free (so writes
 * issued together are gathered), including the writes that queued while the previous batch
 * was in flight. A lone write therefore waits for no timer. Two writes with the same key (the same journal entry, the
 * same run) never share a batch: the later one goes in the next, after the first committed,
 * so a run's writes keep their order.
 */
export class Batcher<Item, Result> {
  private queue: Array<Pending<Item, Result>> = [];
  private inFlight = false;
  private scheduled = false;

  /**
   * @param send applies a batch in one statement and answers each item, in order. If it
   *   throws, every item of the batch fails with that error.
   * @param key items with equal keys are never in the same batch.
   * @param maxBatch most items per statement.
   */
  constructor(
    private readonly send: (items: Item[]) => Promise<Result[]>,
    private readonly key: (item: Item) => string,
    private readonly maxBatch = 500,
  ) {}

  /** Queues `item` for the next batch; resolves with its own answer after its commit. */
  submit(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Items queued or in flight; for tests. */
  get pending(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.inFlight || this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.inFlight || this.queue.length === 0) return;
    const batch: Array<Pending<Item, Result>> = [];
    const rest: Array<Pending<Item, Result>> = [];
    const keys = new Set<string>();
    for (const pending of this.queue) {
      const key = this.key(pending.item);
      if (batch.length >= this.maxBatch || keys.has(key)) rest.push(pending);
      else {
        keys.add(key);
        batch.push(pending);
      }
    }
    this.queue = rest;
    this.inFlight = true;
    try {
      const results = await this.send(batch.map((p) => p.item));
      batch.forEach((pending, i) => pending.resolve(results[i]!));
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      this.inFlight = false;
      // What arrived meanwhile goes on the next turn, with the next writes of the runs
      // just answered (they are issued in this turn's microtasks).
      this.schedule();
    }
  }
}

type Pending<Item, Result> = {
  item: Item;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
};
