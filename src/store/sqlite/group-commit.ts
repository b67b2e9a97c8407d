import type Database from "better-sqlite3";
import { busyPause, isBusy, whenWritable } from "./busy-wait.js";

type Outcome = { ok: boolean } | { error: unknown };

type Pending = {
  apply: () => boolean;
  resolve: (ok: boolean) => void;
  reject: (error: unknown) => void;
  /** When the write was queued: it waits for the write lock `patienceMs` at most. */
  since: number;
};

/**
 * Group commit for SQLite: owner writes issued in the same turn of the event loop (many
 * runs reaching a step boundary together, a worker handing 1,000 runs off at once) are
 * applied in one transaction, so they share one fsync instead of paying one each.
 *
 * Semantics are unchanged for each write: it is a separate statement with its own fence
 * check and its own answer, and its promise resolves only after the transaction that
 * holds it has committed. A write that throws fails alone; the others still commit.
 * While another process holds the write lock, the batch waits without blocking the event
 * loop (see busy-wait.ts), and writes issued meanwhile join it.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private busyAttempts = 0;
  private closed = false;
  /**
   * Made once: better-sqlite3 builds a transaction function's wrappers on every
   * `db.transaction()` call, which cost more than the write itself on the step path.
   */
  private readonly commitBatch: Database.Transaction<(batch: Pending[]) => Outcome[]>;
  private readonly commitOne: Database.Transaction<(apply: () => boolean) => boolean>;

  constructor(
    private readonly db: Database.Database,
    private readonly enabled = true,
    private readonly patienceMs = 5_000,
  ) {
    this.commitBatch = db.transaction((batch: Pending[]) =>
      batch.map((pending): Outcome => {
        try {
          return { ok: pending.apply() };
        } catch (error) {
          return { error };
        }
      }),
    );
    this.commitOne = db.transaction((apply: () => boolean) => apply());
  }

  /** Queues `apply` (returns whether the write took effect) for the next commit. */
  write(apply: () => boolean): Promise<boolean> {
    if (!this.enabled) return whenWritable(() => this.commitOne.immediate(apply), this.patienceMs);
    return new Promise((resolve, reject) => {
      this.queue.push({ apply, resolve, reject, since: Date.now() });
      this.schedule(0);
    });
  }

  /** Commits whatever is queued now, for the last time (the database is closing). */
  flushFinal(): void {
    this.closed = true;
    this.flush();
  }

  private schedule(delayMs: number): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.flush();
    };
    if (delayMs === 0) setImmediate(run);
    else setTimeout(run, delayMs);
  }

  private flush(): void {
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    let outcomes: Outcome[];
    try {
      outcomes = this.commitBatch.immediate(batch);
    } catch (error) {
      if (isBusy(error) && !this.closed && Date.now() - batch[0]!.since < this.patienceMs) {
        // Nothing took effect: the batch goes first in line and tries again shortly.
        this.queue = batch.concat(this.queue);
        this.schedule(busyPause(this.busyAttempts++));
        return;
      }
      // The lock never came, or the commit itself failed (disk full, I/O error): nothing
      // in the batch took effect.
      for (const pending of batch) pending.reject(error);
      return;
    }
    this.busyAttempts = 0;
    batch.forEach((pending, i) => {
      const outcome = outcomes[i]!;
      if ("error" in outcome) pending.reject(outcome.error);
      else pending.resolve(outcome.ok);
    });
  }
}
