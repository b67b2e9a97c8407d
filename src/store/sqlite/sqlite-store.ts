import Database from "better-sqlite3";
import type {
  AbandonRule,
  ClaimedRun,
  JournalEntry,
  Lease,
  NewRun,
  ReleaseReason,
  RunEvent,
  RunListFilter,
  RunRecord,
  RunStatus,
  ShutdownRecord,
  StepWrite,
  Store,
  StoreCapabilities,
  WorkerRecord,
  WorkerState,
} from "../store.js";
import { applySqliteMigrations } from "./sqlite-migrate.js";
import { GroupCommit } from "./group-commit.js";
import { SYNC_BUSY_MS, whenWritable } from "./busy-wait.js";
import { CommitWatcher } from "./sqlite-wake.js";
import { prepareStatements, type SqliteStatements } from "./sqlite-sql.js";
import {
  toEvent,
  toJournalEntry,
  toRun,
  toWorker,
  type EventRow,
  type RunRow,
  type StepRow,
  type WorkerRow,
} from "../rows.js";

export type SqliteSynchronous = "FULL" | "NORMAL";

export type SqliteStoreOptions = {
  /** Database file, or `:memory:` (one process only). */
  path: string;
  /**
   * `FULL` (default): every commit is on disk before it returns, so a power loss keeps
   * every completed step. `NORMAL`: faster; a power loss (not a process crash) may lose
   * the last commits.
   */
  synchronous?: SqliteSynchronous;
  /** How often an idle listener checks for other processes' commits. (Default: 5 ms) */
  wakeIntervalMs?: number;
  /**
   * How long a write waits for another process's write lock before it fails with
   * SQLITE_BUSY. The wait is asynchronous past the first few milliseconds, so a worker
   * keeps heartbeating and answering signals meanwhile. (Default: 5000 ms)
   */
  busyTimeoutMs?: number;
  /**
   * Internal, for tests and the chaos harness only: `false` makes owner writes ignore the
   * fence, to show what fencing prevents. (Default: true)
   */
  fencing?: boolean;
};

/**
 * The embedded backend: one SQLite file in WAL mode shared by every worker process on
 * one machine. Writes are single statements or IMMEDIATE transactions, so two processes
 * never interleave a claim. Time is this machine's clock.
 */
export class SqliteStore implements Store {
  readonly capabilities: StoreCapabilities = { clock: "local", wake: "poll", multiMachine: false };
  readonly description: string;
  readonly db: Database.Database;
  private readonly commitWatcher: CommitWatcher;
  private readonly sql: SqliteStatements;
  /** Owner writes (steps, releases, endings) share commits; see GroupCommit. */
  private readonly commits: GroupCommit;
  /** How long a write waits for the write lock in all (busyTimeoutMs). */
  private readonly patienceMs: number;

  constructor(options: SqliteStoreOptions) {
    this.description = `sqlite:${options.path}`;
    this.patienceMs = options.busyTimeoutMs ?? 5000;
    // Opening and migrating may wait for other processes doing the same, synchronously.
    this.db = new Database(options.path, { timeout: this.patienceMs });
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
    this.db.pragma("foreign_keys = ON");
    applySqliteMigrations(this.db);
    // From here on, waits for the write lock are asynchronous (see busy-wait.ts).
    this.db.pragma(`busy_timeout = ${Math.min(SYNC_BUSY_MS, this.patienceMs)}`);
    this.sql = prepareStatements(this.db, options.fencing ?? true);
    this.commitWatcher = new CommitWatcher(this.db, options.wakeIntervalMs ?? 5);
    this.commits = new GroupCommit(
      this.db,
      process.env.BATON_GROUP_COMMIT !== "0",
      this.patienceMs,
    );
  }

  // runs

  createRun(run: NewRun): Promise<{ run: RunRecord; created: boolean }> {
    return this.whenWritable(() => {
      const now = Date.now();
      const created = this.db
        .transaction(() => {
          const changes = this.sql.insertRun.run({ ...run, now }).changes;
          if (changes === 1)
            this.sql.insertEvent.run({
              runId: run.id,
              kind: "created",
              at: now,
              workerId: null,
              fence: 0,
              detail: null,
            });
          return changes === 1;
        })
        .immediate();
      const row = this.sql.getRun.get(run.id) as RunRow;
      return { run: toRun(row), created };
    });
  }

  getRun(id: string): Promise<RunRecord | undefined> {
    const row = this.sql.getRun.get(id) as RunRow | undefined;
    return Promise.resolve(row && toRun(row));
  }

  listRuns(filter: RunListFilter = {}): Promise<RunRecord[]> {
    const rows = this.sql.listRuns.all({
      status: filter.status ?? null,
      workflow: filter.workflow ?? null,
      before: filter.before ?? null,
      limit: filter.limit ?? 100,
    }) as RunRow[];
    return Promise.resolve(rows.map(toRun));
  }

  countRuns(): Promise<Partial<Record<RunStatus, number>>> {
    const rows = this.sql.countRuns.all() as Array<{ status: RunStatus; n: number }>;
    return Promise.resolve(Object.fromEntries(rows.map((r) => [r.status, r.n])));
  }

  cancelRun(id: string, options: { compensate?: boolean } = {}): Promise<RunRecord | undefined> {
    const compensate = options.compensate === true;
    return this.whenWritable(() => {
      const now = Date.now();
      const row = this.db
        .transaction(() => {
          const reason = compensate
            ? JSON.stringify({ name: "CancelledError", message: `run ${id} was cancelled` })
            : null;
          const updated = this.sql.cancelRun.get({
            id,
            now,
            compensate: compensate ? 1 : 0,
            reason,
          }) as RunRow | undefined;
          if (updated) {
            this.event(id, "cancelled", now, null, updated.fence, null);
            if (compensate) this.event(id, "compensating", now, null, updated.fence, "cancelled");
          }
          return updated;
        })
        .immediate();
      return row && toRun(row);
    });
  }

  reapAbandoned(rules: readonly AbandonRule[]): Promise<string[]> {
    if (rules.length === 0) return Promise.resolve([]);
    return this.whenWritable(() => {
      const now = Date.now();
      return this.db
        .transaction(() =>
          rules.flatMap(({ workflow, abandonAfterMs }) => {
            const reason = JSON.stringify({
              name: "AbandonedError",
              message: `not resumed within abandonAfterMs (${abandonAfterMs} ms) of being handed off or orphaned`,
            });
            const rows = this.sql.reapAbandoned.all({
              workflow,
              now,
              before: now - abandonAfterMs,
              reason,
            }) as Array<{ id: string; fence: number }>;
            for (const row of rows) this.event(row.id, "abandoned", now, null, row.fence, null);
            return rows.map((row) => row.id);
          }),
        )
        .immediate();
    });
  }

  // leases

  claimRuns(
    workerId: string,
    workflows: readonly string[],
    limit: number,
    leaseMs: number,
  ): Promise<ClaimedRun[]> {
    if (limit <= 0 || workflows.length === 0) return Promise.resolve([]);
    const names = JSON.stringify(workflows);
    // A read first: most polls find nothing, and a read takes no write lock.
    if (!this.sql.anyClaimable.get({ workflows: names, now: Date.now(), limit }))
      return Promise.resolve([]);
    return this.whenWritable(() =>
      this.db
        .transaction(() => {
          // Stamped once the write lock is ours: the wait for it may have been long.
          const now = Date.now();
          const params = { workflows: names, now, limit };
          const candidates = this.sql.claimCandidates.all(params) as Array<{
            id: string;
            status: string;
            lease_owner: string | null;
            lease_expires_at: number | null;
            fence: number;
            last_event: string | null;
            last_event_at: number | null;
          }>;
          return candidates.map((c) => {
            const { id, status } = c;
            const row = this.sql.claimOne.get({
              id,
              workerId,
              now,
              expiresAt: now + leaseMs,
            }) as RunRow;
            const takeover = status === "running" || status === "compensating-expired";
            let resumedFrom: ClaimedRun["resumedFrom"];
            if (takeover && c.lease_expires_at !== null) {
              // The expiry that allowed this takeover, on the timeline, with the old owner.
              this.event(id, "lease-expired", c.lease_expires_at, c.lease_owner, c.fence, null);
              resumedFrom = { cause: "crash", msAgo: now - c.lease_expires_at };
            } else if (c.last_event === "handoff" && c.last_event_at !== null) {
              resumedFrom = { cause: "handoff", msAgo: now - c.last_event_at };
            }
            this.event(id, takeover ? "takeover" : "claimed", now, workerId, row.fence, null);
            return { ...toRun(row), takeover, ...(resumedFrom ? { resumedFrom } : {}) };
          });
        })
        .immediate(),
    );
  }

  renewLeases(
    workerId: string,
    leases: readonly Lease[],
    leaseMs: number,
  ): Promise<Array<{ runId: string; fence: number }>> {
    const held = this.whenWritable(() =>
      this.db
        .transaction(() => {
          const now = Date.now(); // once the write lock is ours
          this.sql.touchWorker.run({ id: workerId, now });
          if (leases.length === 0) return [];
          const pairs = JSON.stringify(leases.map((l) => [l.runId, l.fence]));
          return this.sql.renewLeases.all({ workerId, pairs, expiresAt: now + leaseMs }) as Array<{
            id: string;
            fence: number;
          }>;
        })
        .immediate(),
    );
    return held.then((rows) => rows.map((r) => ({ runId: r.id, fence: r.fence })));
  }

  completeRun(lease: Lease, output: string | null): Promise<boolean> {
    return this.finish(lease, "completed", output, null);
  }

  failRun(lease: Lease, error: string): Promise<boolean> {
    return this.finish(lease, "failed", null, error);
  }

  beginCompensation(lease: Lease, error: string | null): Promise<boolean> {
    return this.commits.write(() => {
      const now = Date.now();
      return this.db.transaction(() => {
        const params = { id: lease.runId, fence: lease.fence, error, now };
        if (this.sql.beginCompensation.run(params).changes !== 1) return false;
        this.event(lease.runId, "compensating", now, lease.workerId, lease.fence, null);
        return true;
      })();
    });
  }

  markCompensated(lease: Lease): Promise<boolean> {
    return this.finish(lease, "compensated", null, null);
  }

  releaseRun(lease: Lease, reason: ReleaseReason, delayMs = 0): Promise<boolean> {
    return this.commits.write(() => this.release(lease, reason, delayMs));
  }

  private release(lease: Lease, reason: ReleaseReason, delayMs: number): boolean {
    const now = Date.now();
    return this.db.transaction(() => {
      const params = { id: lease.runId, fence: lease.fence, now, availableAt: now + delayMs };
      const statement = {
        handoff: this.sql.handoff,
        sleep: this.sql.sleep,
        retry: this.sql.requeue,
        compensate: this.sql.toCompensate,
      }[reason];
      if (statement.run(params).changes !== 1) return false;
      const kind = (
        {
          handoff: "handoff",
          sleep: "sleeping",
          compensate: "compensating",
          retry: undefined,
        } as const
      )[reason];
      if (kind) this.event(lease.runId, kind, now, lease.workerId, lease.fence, null);
      return true;
    })();
  }

  // journal

  loadJournal(runId: string): Promise<JournalEntry[]> {
    const rows = this.sql.loadJournal.all(runId) as StepRow[];
    return Promise.resolve(rows.map(toJournalEntry));
  }

  writeStep(lease: Lease, write: StepWrite): Promise<boolean> {
    return this.commits.write(() => this.applyStepWrite(lease, write));
  }

  private applyStepWrite(lease: Lease, write: StepWrite): boolean {
    const changes = this.sql.writeStep.run({
      runId: lease.runId,
      fence: lease.fence,
      workerId: lease.workerId,
      seq: write.seq,
      name: write.name,
      kind: write.kind,
      status: write.status,
      output: write.output ?? null,
      error: write.error ?? null,
      progress: write.progress ?? null,
      attempts: write.attempts,
      idempotencyKey: write.idempotencyKey ?? null,
      startedAt: write.startedAt ?? null,
      now: Date.now(),
    }).changes;
    return changes === 1;
  }

  // workers

  registerWorker(
    worker: Omit<WorkerRecord, "startedAt" | "heartbeatAt" | "stoppedAt">,
  ): Promise<void> {
    return this.whenWritable(() => {
      this.sql.registerWorker.run({ ...worker, now: Date.now() });
    });
  }

  setWorkerState(workerId: string, state: WorkerState): Promise<void> {
    return this.whenWritable(() => {
      this.sql.setWorkerState.run({ id: workerId, state, now: Date.now() });
    });
  }

  listWorkers(): Promise<WorkerRecord[]> {
    return Promise.resolve((this.sql.listWorkers.all() as WorkerRow[]).map(toWorker));
  }

  registerWorkflows(workflows: ReadonlyArray<{ name: string; version: number }>): Promise<void> {
    return this.whenWritable(() => {
      const now = Date.now();
      this.db
        .transaction(() => {
          for (const w of workflows) this.sql.registerWorkflow.run({ ...w, now });
        })
        .immediate();
    });
  }

  listWorkflows(): Promise<Array<{ name: string; version: number }>> {
    return Promise.resolve(
      this.sql.listWorkflows.all() as Array<{ name: string; version: number }>,
    );
  }

  // events

  appendEvent(event: Omit<RunEvent, "id" | "at">): Promise<void> {
    return this.whenWritable(() =>
      this.event(event.runId, event.kind, Date.now(), event.workerId, event.fence, event.detail),
    );
  }

  listEvents(runId: string): Promise<RunEvent[]> {
    return Promise.resolve((this.sql.listEvents.all(runId) as EventRow[]).map(toEvent));
  }

  // shutdown reports

  saveShutdownReport(workerId: string, report: string): Promise<void> {
    return this.whenWritable(() => {
      this.sql.saveShutdown.run({ workerId, at: Date.now(), report });
    });
  }

  latestShutdownReport(workerId: string): Promise<ShutdownRecord | undefined> {
    const row = this.sql.latestShutdown.get(workerId) as
      { worker_id: string; at: number; report: string } | undefined;
    return Promise.resolve(row && { workerId: row.worker_id, at: row.at, report: row.report });
  }

  /** Another process's commits, seen through `PRAGMA data_version` (see CommitWatcher). */
  onWake(listener: () => void): () => void {
    return this.commitWatcher.add(listener);
  }

  now(): Promise<number> {
    return Promise.resolve(Date.now());
  }

  close(): Promise<void> {
    this.commitWatcher.close();
    if (this.db.open) {
      this.commits.flushFinal();
      this.db.close();
    }
    return Promise.resolve();
  }

  private finish(
    lease: Lease,
    status: "completed" | "failed" | "compensated",
    output: string | null,
    error: string | null,
  ): Promise<boolean> {
    return this.commits.write(() => {
      const now = Date.now();
      return this.db.transaction(() => {
        const params = { id: lease.runId, fence: lease.fence, status, output, error, now };
        if (this.sql.finishRun.run(params).changes !== 1) return false;
        this.event(lease.runId, status, now, lease.workerId, lease.fence, null);
        return true;
      })();
    });
  }

  /** A write outside the group commit, waiting for the write lock without blocking. */
  private whenWritable<T>(write: () => T): Promise<T> {
    return whenWritable(write, this.patienceMs);
  }

  private event(
    runId: string,
    kind: RunEvent["kind"],
    at: number,
    workerId: string | null,
    fence: number | null,
    detail: string | null,
  ): void {
    this.sql.insertEvent.run({ runId, kind, at, workerId, fence, detail });
  }
}
