import { setTimeout as sleep } from "node:timers/promises";

/**
 * How long one attempt waits for another process's write lock inside SQLite. SQLite's
 * busy handler waits synchronously, stopping the whole event loop (heartbeats, signal
 * handlers, health probes), so it is kept short; the rest of the wait is asynchronous.
 */
export const SYNC_BUSY_MS = 20;

/** SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, …): another writer holds the lock. */
export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}

/** The pause before the next attempt: 1, 2, 4 … ms, at most 50. */
export function busyPause(attempt: number): number {
  return Math.min(2 ** attempt, 50);
}

/**
 * Runs `attempt` (a write that did nothing if it threw SQLITE_BUSY: a single statement or a
 * whole transaction) until it gets the write lock, waiting asynchronously between
 * attempts, for at most `patienceMs`; then the SQLITE_BUSY error is thrown.
 */
export async function whenWritable<T>(attempt: () => T, patienceMs: number): Promise<T> {
  const deadline = Date.now() + patienceMs;
  for (let n = 0; ; n++) {
    try {
      return attempt();
    } catch (error) {
      if (!isBusy(error) || Date.now() >= deadline) throw error;
    }
    await sleep(busyPause(n));
  }
}
