import type { RunRecord, RunStatus, Store } from "../store/store.js";

/** What {@link countOrphanedRuns} needs of a store. */
export type OrphanSource = Pick<Store, "listRuns" | "now"> & {
  /**
   * Optional, one statement: `SELECT count(*) FROM runs WHERE status IN ('running',
   * 'compensating') AND lease_expires_at < now()`. Used instead of paging through the
   * owned runs when the store has it.
   */
  countOrphanedRuns?: () => Promise<number>;
};

/** Statuses in which a run has an owner holding a lease. */
const OWNED: readonly RunStatus[] = ["running", "compensating"];

/**
 * True for a run that has an owner (`running`, or `compensating` under a lease) whose
 * lease expired at `now`: its worker died or stalled, and nobody has taken it over yet.
 */
export function isOrphaned(
  run: Pick<RunRecord, "status" | "leaseExpiresAt">,
  now: number,
): boolean {
  return OWNED.includes(run.status) && run.leaseExpiresAt !== null && run.leaseExpiresAt < now;
}

/**
 * Runs whose owner's lease has expired on the store's clock and that no worker has taken
 * over yet. Usually 0 or briefly a few after a crash; a value that stays above 0 for
 * longer than a lease plus a poll interval means no live worker can claim them (none
 * runs their workflow, or none is up).
 *
 * Uses the store's `countOrphanedRuns()` when it has one; otherwise pages through the
 * owned runs with `listRuns` (`pageSize` at a time), one query per page.
 */
export async function countOrphanedRuns(store: OrphanSource, pageSize = 500): Promise<number> {
  if (store.countOrphanedRuns) return store.countOrphanedRuns();
  const now = await store.now();
  let orphaned = 0;
  for (const status of OWNED) {
    let before: string | undefined;
    for (;;) {
      const page = await store.listRuns({ status, limit: pageSize, before });
      for (const run of page) if (isOrphaned(run, now)) orphaned += 1;
      if (page.length < pageSize) break;
      before = page[page.length - 1]!.id;
    }
  }
  return orphaned;
}
