import type { Closeable } from "../types.js";

/** The part of a `pg` Pool this adapter uses; `pg` is not imported. */
export interface PgPoolLike {
  end(): Promise<void>;
  /** Set by pg once `end()` was called. */
  readonly ending?: boolean;
  readonly totalCount?: number;
  readonly idleCount?: number;
}

/**
 * Closes a `pg` Pool with `pool.end()`, which waits for checked-out clients to be
 * released. pg has no forced close: if the signal aborts first, the close is abandoned
 * with an error saying how many clients were still checked out.
 */
export function pgPoolCloseable(pool: PgPoolLike, options: { name?: string } = {}): Closeable {
  return {
    name: options.name ?? "pg pool",
    close(signal) {
      if (pool.ending) return;
      return new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const busy = (pool.totalCount ?? 0) - (pool.idleCount ?? 0);
          reject(
            new Error(`pool.end() did not finish in time; ${busy} client(s) still checked out`),
          );
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        pool
          .end()
          .finally(() => signal.removeEventListener("abort", onAbort))
          .then(resolve, reject);
      });
    },
  };
}
