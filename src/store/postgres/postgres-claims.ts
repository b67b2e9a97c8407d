import type { ClaimedRun, JournalEntry } from "../store.js";
import { toJournalEntry, toRun, type RunRow, type StepRow } from "../rows.js";
import type { PostgresQuery } from "./postgres-query.js";
import { JOURNAL_COLUMNS, type PostgresStatements } from "./postgres-sql.js";

type ClaimedRow = RunRow & {
  takeover: boolean;
  old_expires_at: number | null;
  last_event: string | null;
  last_event_at: number | null;
  claimed_at: number;
  /** The journal as a JSON array of step rows, when the claim could read it (see the SQL). */
  journal: string | null;
};

/**
 * The PostgreSQL store's claim path: one statement leases up to `limit` runs to a worker
 * (`FOR UPDATE SKIP LOCKED`, lease times on the database clock, each claim moving the
 * run's fence), and each claimed run comes with a promise of its journal.
 *
 * What it guarantees: a claim is sent once (`once`: re-sending after a lost answer could
 * claim twice; such runs are taken over when their lease expires). A journal handed out
 * holds every write of the run's earlier owners: it is read either in the claim's own
 * snapshot, when that snapshot is known to hold all of it, or after the claim committed
 * (a stale owner's later write is refused by the fence). A failed journal read is never
 * left unhandled; it rejects only that run's promise.
 */
export class PostgresClaims {
  /**
   * @param query sends one statement with the store's retry policy.
   * @param sql the store's statements for its schema.
   * @param loadJournal reads one run's journal (the fallback when the grouped read fails).
   */
  constructor(
    private readonly query: PostgresQuery,
    private readonly sql: PostgresStatements,
    private readonly loadJournal: (runId: string) => Promise<JournalEntry[]>,
  ) {}

  /** Leases up to `limit` runs of `workflows` to `workerId` for `leaseMs`. */
  async claimRuns(
    workerId: string,
    workflows: readonly string[],
    limit: number,
    leaseMs: number,
  ): Promise<ClaimedRun[]> {
    if (limit <= 0 || workflows.length === 0) return [];
    const values = [workerId, workflows, limit, leaseMs];
    const { rows } = await this.query<ClaimedRow>(this.sql.claimRuns, values, "once");
    const journals = this.journalsOf(rows);
    return rows.map((row) => {
      let resumedFrom: ClaimedRun["resumedFrom"];
      if (row.takeover && row.old_expires_at !== null) {
        resumedFrom = { cause: "crash", msAgo: row.claimed_at - row.old_expires_at };
      } else if (row.last_event === "handoff" && row.last_event_at !== null) {
        resumedFrom = { cause: "handoff", msAgo: row.claimed_at - row.last_event_at };
      }
      return {
        ...toRun(row),
        takeover: row.takeover,
        ...(resumedFrom ? { resumedFrom } : {}),
        journal: journals.get(row.id)!,
      };
    });
  }

  /**
   * The journals of runs just claimed, so that the worker need not read them one by one
   * and the claim need not wait for them. The claim statement itself returns the journal
   * when its snapshot is known to hold all of it: a run at fence 1 was never owned before
   * (every claim, cancel and reap moves the fence, and only an owner writes its journal), so
   * its journal is empty; a released run whose row did not change between the statement's
   * snapshot and its lock (see `claimRuns` in the SQL). The others — takeovers, mostly —
   * are read in one statement sent after the claim committed, so the read holds every write
   * of an earlier owner (a stale owner's later write is refused by the fence). If that read
   * fails, each run's journal is read on its own.
   */
  private journalsOf(rows: readonly ClaimedRow[]): Map<string, Promise<JournalEntry[]>> {
    const journals = new Map<string, Promise<JournalEntry[]>>();
    const unread = rows.filter((row) => row.journal === null).map((row) => row.id);
    const batch =
      unread.length === 0
        ? undefined
        : this.query<StepRow>(this.sql.loadJournals, [unread], "idempotent").then(
            ({ rows: steps }) => {
              const byRun = new Map<string, JournalEntry[]>(unread.map((id) => [id, []]));
              for (const step of steps) byRun.get(step.run_id)!.push(toJournalEntry(step));
              return byRun;
            },
          );
    for (const row of rows) {
      const journal =
        row.journal !== null || !batch
          ? Promise.resolve(journalFromJson(row.journal ?? "[]"))
          : batch.then(
              (byRun) => byRun.get(row.id)!,
              () => this.loadJournal(row.id),
            );
      // A caller that never asks for a journal must not leave a failed read unhandled.
      journal.catch(() => undefined);
      journals.set(row.id, journal);
    }
    return journals;
  }
}

/** A journal returned by the claim: a JSON array of entries, each an array of `JOURNAL_COLUMNS`. */
function journalFromJson(json: string): JournalEntry[] {
  return (JSON.parse(json) as unknown[][]).map((values) => {
    const row: Record<string, unknown> = {};
    JOURNAL_COLUMNS.forEach((column, i) => (row[column] = values[i]));
    return toJournalEntry(row as StepRow);
  });
}
