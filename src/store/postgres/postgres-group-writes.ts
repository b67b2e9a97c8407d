import type pg from "pg";
import type { Lease, NewRun, RunEvent, RunRecord, StepWrite } from "../store.js";
import { toRun, type RunRow, type StepRow } from "../rows.js";
import { Batcher } from "./postgres-batch.js";
import type { PostgresQuery, QueryResult } from "./postgres-query.js";
import { classifyFailure } from "./postgres-retry.js";
import type { PostgresStatements } from "./postgres-sql.js";

/** A batched write's answer: applied, and whether an earlier try's answer was lost. */
type Applied = { ok: boolean; ambiguous: boolean };
/** How a run ends: `completeRun`, `failRun` or `markCompensated`. */
export type FinishStatus = "completed" | "failed" | "compensated";
type Finish = { lease: Lease; status: FinishStatus; output: string | null; error: string | null };
/** The release reasons sent in groups (a retry is sent on its own, by the store). */
export type BatchedRelease = "handoff" | "sleep" | "compensate";
type Release = { lease: Lease; delayMs: number };

/**
 * The PostgreSQL store's grouped write paths: new runs, step writes, run endings and
 * releases, each kind gathered by a {@link Batcher} and sent as one statement over arrays
 * (group commit; see `postgres-batch.ts` and docs/postgres.md).
 *
 * What each write keeps, grouped or not:
 * - Fencing per row: the statement checks each row on its own (its run, its fence, its
 *   owner, live), so one stale write in a batch is refused while the others apply.
 * - Each caller's own answer, after commit: a promise resolves only once the statement
 *   holding its row has committed, with that row's answer. A batch that fails for a reason
 *   that is not a connection's is re-sent row by row, so each caller gets its own answer
 *   or error. After a lost answer (`ambiguous`), a refused fenced write looks for its first
 *   try's trace — the event with this lease's fence and worker, or the journal entry —
 *   before answering, so a lost answer never turns into a false "lease lost".
 * - The order of a run's writes: two writes with the same key (the same journal entry,
 *   the same run) are never in flight together; the later goes after the first committed.
 */
export class GroupWrites {
  private readonly batches: {
    createRun: Batcher<NewRun, RunRow | undefined>;
    writeStep: Batcher<{ lease: Lease; write: StepWrite }, Applied>;
    finish: Batcher<Finish, Applied>;
    release: Record<BatchedRelease, Batcher<Release, Applied>>;
  };

  /**
   * @param query sends one statement with the store's retry policy.
   * @param sql the store's statements for its schema.
   */
  constructor(
    private readonly query: PostgresQuery,
    private readonly sql: PostgresStatements,
  ) {
    const release = (reason: BatchedRelease) =>
      new Batcher<Release, Applied>(
        (items) => this.releaseBatch(reason, items),
        (r) => r.lease.runId,
      );
    this.batches = {
      createRun: new Batcher(
        (runs) => this.createRunBatch(runs),
        (run) => run.id,
      ),
      writeStep: new Batcher(
        (writes) => this.writeStepBatch(writes),
        ({ lease, write }) => `${lease.runId}\u0000${write.seq}`,
      ),
      finish: new Batcher(
        (items) => this.finishBatch(items),
        (f) => f.lease.runId,
      ),
      release: {
        handoff: release("handoff"),
        sleep: release("sleep"),
        compensate: release("compensate"),
      },
    };
  }

  /** Inserts `run` unless its id is taken; `created` is false (with the stored run) if it was. */
  async createRun(run: NewRun): Promise<{ run: RunRecord; created: boolean }> {
    const row = await this.batches.createRun.submit(run);
    if (row) return { run: toRun(row), created: true };
    // A retry after a lost answer may land here for a run this call did create.
    const existing = await this.query<RunRow>(this.sql.getRun, [run.id], "idempotent");
    return { run: toRun(existing.rows[0]!), created: false };
  }

  /** Writes a journal entry under `lease`; false if the lease no longer holds the run. */
  async writeStep(lease: Lease, write: StepWrite): Promise<boolean> {
    const result = await this.batches.writeStep.submit({ lease, write });
    if (result.ok) return true;
    if (!result.ambiguous) return false;
    // Refused on the re-send: the entry matches this write if the first try committed it.
    const { rows } = await this.query<StepRow>(
      this.sql.getStep,
      [lease.runId, write.seq],
      "idempotent",
    );
    const entry = rows[0];
    return (
      entry !== undefined &&
      entry.fence === lease.fence &&
      entry.worker_id === lease.workerId &&
      entry.name === write.name &&
      entry.status === write.status &&
      entry.attempts === write.attempts
    );
  }

  /** Ends the run held by `lease` with `status`; false if the lease no longer holds it. */
  async finish(
    lease: Lease,
    status: FinishStatus,
    output: string | null,
    error: string | null,
  ): Promise<boolean> {
    const result = await this.batches.finish.submit({ lease, status, output, error });
    if (result.ok) return true;
    return result.ambiguous && this.hasEvent(lease, status);
  }

  /**
   * Releases the run held by `lease` for `reason`, available again after `delayMs`; false
   * if the lease no longer holds it. After a lost answer the release's event tells; for
   * compensation that event may be `beginCompensation`'s, and the run's lease tells them apart.
   */
  async release(lease: Lease, reason: BatchedRelease, delayMs: number): Promise<boolean> {
    const { runId, fence, workerId } = lease;
    const kind = ({ handoff: "handoff", sleep: "sleeping", compensate: "compensating" } as const)[
      reason
    ];
    const result = await this.batches.release[reason].submit({ lease, delayMs });
    if (result.ok) return true;
    if (!result.ambiguous || !(await this.hasEvent(lease, kind))) return false;
    if (reason !== "compensate") return true;
    // Or was the event `beginCompensation`'s? Then this lease still holds the run.
    const run = await this.getRun(runId);
    return !(run?.fence === fence && run.leaseOwner === workerId);
  }

  /** Whether the owner's own state change committed: its event row has this lease's fence. */
  async hasEvent(lease: Lease, kind: RunEvent["kind"]): Promise<boolean> {
    const values = [lease.runId, kind, lease.fence, lease.workerId];
    const { rowCount } = await this.query(this.sql.findEvent, values, "idempotent");
    return rowCount === 1;
  }

  private async getRun(id: string): Promise<RunRecord | undefined> {
    const { rows } = await this.query<RunRow>(this.sql.getRun, [id], "idempotent");
    return rows[0] && toRun(rows[0]);
  }

  /** The single-row form of a step write (a batch that failed as a whole is re-sent so). */
  private async writeStepAlone(lease: Lease, write: StepWrite): Promise<Applied> {
    const values = [
      lease.runId,
      lease.fence,
      lease.workerId,
      write.seq,
      write.name,
      write.kind,
      write.status,
      write.output ?? null,
      write.error ?? null,
      write.progress ?? null,
      write.attempts,
      write.startedAt ?? null,
      write.idempotencyKey ?? null,
    ];
    const result = await this.query(this.sql.writeStep, values, "fenced");
    return { ok: result.rowCount === 1, ambiguous: result.ambiguous };
  }

  private async writeStepBatch(
    writes: ReadonlyArray<{ lease: Lease; write: StepWrite }>,
  ): Promise<Applied[]> {
    if (writes.length === 1) return [await this.writeStepAlone(writes[0]!.lease, writes[0]!.write)];
    const column = <T>(f: (w: { lease: Lease; write: StepWrite }) => T) => writes.map(f);
    const values = [
      column((w) => w.lease.runId),
      column((w) => w.lease.fence),
      column((w) => w.lease.workerId),
      column((w) => w.write.seq),
      column((w) => w.write.name),
      column((w) => w.write.kind),
      column((w) => w.write.status),
      column((w) => w.write.output ?? null),
      column((w) => w.write.error ?? null),
      column((w) => w.write.progress ?? null),
      column((w) => w.write.attempts),
      column((w) => w.write.startedAt ?? null),
      column((w) => w.write.idempotencyKey ?? null),
    ];
    return this.batched(
      () => this.query<{ run_id: string; seq: number }>(this.sql.writeSteps, values, "fenced"),
      (rows) => {
        const applied = new Set(rows.map((r) => `${r.run_id}\u0000${r.seq}`));
        return writes.map((w) => applied.has(`${w.lease.runId}\u0000${w.write.seq}`));
      },
      () => Promise.all(writes.map((w) => this.writeStepAlone(w.lease, w.write))),
    );
  }

  private async finishAlone({ lease, status, output, error }: Finish): Promise<Applied> {
    const values = [lease.runId, lease.fence, status, output, error, lease.workerId];
    const result = await this.query(this.sql.finishRun, values, "fenced");
    return { ok: result.rowCount === 1, ambiguous: result.ambiguous };
  }

  private async finishBatch(items: readonly Finish[]): Promise<Applied[]> {
    if (items.length === 1) return [await this.finishAlone(items[0]!)];
    const values = [
      items.map((f) => f.lease.runId),
      items.map((f) => f.lease.fence),
      items.map((f) => f.status),
      items.map((f) => f.output),
      items.map((f) => f.error),
      items.map((f) => f.lease.workerId),
    ];
    return this.batched(
      () => this.query<{ id: string }>(this.sql.finishRuns, values, "fenced"),
      (rows) => {
        const applied = new Set(rows.map((r) => r.id));
        return items.map((f) => applied.has(f.lease.runId));
      },
      () => Promise.all(items.map((f) => this.finishAlone(f))),
    );
  }

  private async releaseAlone(
    reason: BatchedRelease,
    { lease, delayMs }: Release,
  ): Promise<Applied> {
    const statement = {
      handoff: this.sql.handoff,
      sleep: this.sql.sleep,
      compensate: this.sql.toCompensate,
    }[reason];
    const values = [lease.runId, lease.fence, lease.workerId, delayMs];
    const result = await this.query(statement, values, "fenced");
    return { ok: result.rowCount === 1, ambiguous: result.ambiguous };
  }

  private async releaseBatch(
    reason: BatchedRelease,
    items: readonly Release[],
  ): Promise<Applied[]> {
    if (items.length === 1) return [await this.releaseAlone(reason, items[0]!)];
    const statement = {
      handoff: this.sql.handoffs,
      sleep: this.sql.sleeps,
      compensate: this.sql.toCompensateBatch,
    }[reason];
    const values = [
      items.map((r) => r.lease.runId),
      items.map((r) => r.lease.fence),
      items.map((r) => r.lease.workerId),
      items.map((r) => r.delayMs),
    ];
    return this.batched(
      () => this.query<{ id: string }>(statement, values, "fenced"),
      (rows) => {
        const applied = new Set(rows.map((r) => r.id));
        return items.map((r) => applied.has(r.lease.runId));
      },
      () => Promise.all(items.map((r) => this.releaseAlone(reason, r))),
    );
  }

  private async createRunAlone(run: NewRun): Promise<RunRow | undefined> {
    const values = [run.id, run.workflow, run.version, run.input, run.priority];
    const { rows } = await this.query<RunRow>(this.sql.createRun, values, "idempotent");
    return rows[0];
  }

  /** Inserted rows, in the order of `runs`; undefined where the id was taken. */
  private async createRunBatch(runs: readonly NewRun[]): Promise<Array<RunRow | undefined>> {
    if (runs.length === 1) return [await this.createRunAlone(runs[0]!)];
    const values = [
      runs.map((r) => r.id),
      runs.map((r) => r.workflow),
      runs.map((r) => r.version),
      runs.map((r) => r.input),
      runs.map((r) => r.priority),
    ];
    try {
      const { rows } = await this.query<RunRow>(this.sql.createRuns, values, "idempotent");
      const byId = new Map(rows.map((row) => [row.id, row]));
      return runs.map((r) => byId.get(r.id));
    } catch (error) {
      if (classifyFailure(error, false) !== "fatal") throw error;
      return Promise.all(runs.map((r) => this.createRunAlone(r)));
    }
  }

  /**
   * Sends a batched fenced write and answers each item. If the statement fails for a reason
   * that is not a connection's (bad input in one row fails them all), each item is sent on
   * its own, so that each caller gets its own answer or error.
   */
  private async batched<R extends pg.QueryResultRow>(
    send: () => Promise<QueryResult<R>>,
    answer: (rows: R[]) => boolean[],
    alone: () => Promise<Applied[]>,
  ): Promise<Applied[]> {
    let result: QueryResult<R>;
    try {
      result = await send();
    } catch (error) {
      if (classifyFailure(error, false) !== "fatal") throw error;
      return alone();
    }
    return answer(result.rows).map((ok) => ({ ok, ambiguous: result.ambiguous }));
  }
}
