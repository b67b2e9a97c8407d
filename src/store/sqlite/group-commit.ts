import type Database from "better-sqlite3";

type Pending = {
  apply: () => boolean;
  resolve: (ok: boolean) => void;
  reject: (error: unknown) => void;
};

/**
 * Group commit for SQLite: owner writes issued in the same turn of the event loop (many
 * runs reaching a step boundary together, a worker handing 1,000 runs off at once) are
 * applied in one transaction, so they share one fsync instead of paying one each.
 *
 * Semantics are unchanged for each write: it is a separate statement with its own fence
 * check and its own answer, and its promise resolves only after the transaction that
 * holds it has committed. A write that throws fails alone; the others still commit.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly db: Database.Database,
    private readonly enabled = true,
  ) {}

  /** Queues `apply` (returns whether the write took effect) for the next commit. */
  write(apply: () => boolean): Promise<boolean> {
    return new Promise((resolve, reject) => {
      if (!this.enabled) return resolve(this.db.transaction(apply).immediate());
      this.queue.push({ apply, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Commits whatever is queued now (before the database closes). */
  flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    const outcomes: Array<{ ok: boolean } | { error: unknown }> = [];
    try {
      this.db
        .transaction(() => {
          for (const pending of batch) {
            try {
              outcomes.push({ ok: pending.apply() });
            } catch (error) {
              outcomes.push({ error });
            }
          }
        })
        .immediate();
    } catch (error) {
      // The commit itself failed (disk full, I/O error): nothing in the batch took effect.
      for (const pending of batch) pending.reject(error);
      return;
    }
    batch.forEach((pending, i) => {
      const outcome = outcomes[i]!;
      if ("error" in outcome) pending.reject(outcome.error);
      else pending.resolve(outcome.ok);
    });
  }
}
