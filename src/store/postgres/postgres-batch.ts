/**
 * Group commit for the PostgreSQL store: writes of one kind (step writes, run endings,
 * releases, new runs) issued by many runs at about the same time are sent as one statement
 * over arrays, so they share one round trip, one plan and one commit instead of paying one
 * each. It is what lets 32 runs step at once without 32 statements queueing for a pool of 10.
 *
 * Semantics are unchanged for each write: the statement checks each row on its own (its
 * run, its fence), each caller gets its own answer, and every promise resolves only after
 * the statement that holds its row has committed. Writes are gathered for one turn of the
 * event loop (those issued together go together) and sent, with up to two batches of a
 * kind in flight; more wait for one of them to return, and go together then. A lone write
 * therefore waits for no timer. Two writes with the same key (the same journal entry, the
 * same run) are never out at the same time: the later one goes after the first has
 * committed, so a run's writes keep their order and one statement never touches a row twice.
 */
export class Batcher<Item, Result> {
  private queue: Array<Pending<Item, Result>> = [];
  /** Batches sent and not yet answered. */
  private inFlight = 0;
  /** Keys of the items in those batches: a second item with one of them waits. */
  private readonly busyKeys = new Set<string>();
  private scheduled = false;

  /**
   * @param send applies a batch in one statement and answers each item, in order. If it
   *   throws, every item of the batch fails with that error.
   * @param key items with equal keys are never in the same batch.
   * @param maxBatch most items per statement.
   * @param maxInFlight most batches sent and not yet answered.
   */
  constructor(
    private readonly send: (items: Item[]) => Promise<Result[]>,
    private readonly key: (item: Item) => string,
    private readonly maxBatch = 500,
    private readonly maxInFlight = 2,
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
    if (this.inFlight >= this.maxInFlight || this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.inFlight >= this.maxInFlight) return;
    const batch: Array<Pending<Item, Result>> = [];
    const keys: string[] = [];
    const rest: Array<Pending<Item, Result>> = [];
    for (const pending of this.queue) {
      const key = this.key(pending.item);
      if (batch.length >= this.maxBatch || this.busyKeys.has(key)) rest.push(pending);
      else {
        this.busyKeys.add(key);
        keys.push(key);
        batch.push(pending);
      }
    }
    this.queue = rest;
    if (batch.length === 0) return;
    this.inFlight++;
    try {
      const results = await this.send(batch.map((p) => p.item));
      batch.forEach((pending, i) => pending.resolve(results[i]!));
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      this.inFlight--;
      for (const key of keys) this.busyKeys.delete(key);
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
