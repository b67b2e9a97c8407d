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
import {
  toEvent,
  toJournalEntry,
  toRun,
  toWorker,
  type EventRow,
  type RunRow,
  type StepRow,
  type WorkerRow,
} from "./sqlite-rows.js";

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
  /** How long a statement waits for another process's write lock. (Default: 5000 ms) */
  busyTimeoutMs?: number;
  /**
   * Internal, for tests and the chaos harness only: `false` makes owner writes ignore the
   * fence, to show what fencing prevents. (Default: true)
   */
  fencing?: boolean;
};

const TERMINAL_SQL = "('completed','failed','cancelled','compensated')";

/**
 * The embedded backend: one SQLite file in WAL mode shared by every worker process on
 * one machine. Writes are single statements or IMMEDIATE transactions, so two processes
 * never interleave a claim. Time is this machine's clock.
 */
export class SqliteStore implements Store {
  readonly capabilities: StoreCapabilities = { clock: "local", wake: "poll", multiMachine: false };
  readonly description: string;
  readonly db: Database.Database;
  private readonly wakeIntervalMs: number;
  private readonly listeners = new Set<() => void>();
  private wakeTimer: NodeJS.Timeout | undefined;
  private lastDataVersion = 0;
  private readonly sql: ReturnType<typeof prepareStatements>;
  /** Owner writes (steps, releases, endings) share commits; see GroupCommit. */
  private readonly commits: GroupCommit;

  constructor(options: SqliteStoreOptions) {
    this.description = `sqlite:${options.path}`;
    this.wakeIntervalMs = options.wakeIntervalMs ?? 5;
    this.db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 5000 });
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
    this.db.pragma("foreign_keys = ON");
    applySqliteMigrations(this.db);
    this.sql = prepareStatements(this.db, options.fencing ?? true);
    this.commits = new GroupCommit(this.db, process.env.BATON_GROUP_COMMIT !== "0");
  }

  // runs

  createRun(run: NewRun): Promise<{ run: RunRecord; created: boolean }> {
    const now = Date.now();
    const created = this.db.transaction(() => {
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
    })();
    const row = this.sql.getRun.get(run.id) as RunRow;
    return Promise.resolve({ run: toRun(row), created });
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
    const now = Date.now();
    const compensate = options.compensate === true;
    const row = this.db.transaction(() => {
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
    })();
    return Promise.resolve(row && toRun(row));
  }

  reapAbandoned(rules: readonly AbandonRule[]): Promise<string[]> {
    if (rules.length === 0) return Promise.resolve([]);
    const now = Date.now();
    const reaped = this.db.transaction(() =>
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
    )();
    return Promise.resolve(reaped);
  }

  // leases

  claimRuns(
    workerId: string,
    workflows: readonly string[],
    limit: number,
    leaseMs: number,
  ): Promise<ClaimedRun[]> {
    if (limit <= 0 || workflows.length === 0) return Promise.resolve([]);
    const now = Date.now();
    const params = { workflows: JSON.stringify(workflows), now, limit };
    // A read first: most polls find nothing, and a read takes no write lock.
    if (!this.sql.anyClaimable.get(params)) return Promise.resolve([]);
    const claimed = this.db
      .transaction(() => {
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
      .immediate();
    return Promise.resolve(claimed);
  }

  renewLeases(
    workerId: string,
    leases: readonly Lease[],
    leaseMs: number,
  ): Promise<Array<{ runId: string; fence: number }>> {
    const now = Date.now();
    const held = this.db.transaction(() => {
      this.sql.touchWorker.run({ id: workerId, now });
      if (leases.length === 0) return [];
      const pairs = JSON.stringify(leases.map((l) => [l.runId, l.fence]));
      return this.sql.renewLeases.all({ workerId, pairs, expiresAt: now + leaseMs }) as Array<{
        id: string;
        fence: number;
      }>;
    })();
    return Promise.resolve(held.map((r) => ({ runId: r.id, fence: r.fence })));
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
    this.sql.registerWorker.run({ ...worker, now: Date.now() });
    return Promise.resolve();
  }

  setWorkerState(workerId: string, state: WorkerState): Promise<void> {
    this.sql.setWorkerState.run({ id: workerId, state, now: Date.now() });
    return Promise.resolve();
  }

  listWorkers(): Promise<WorkerRecord[]> {
    return Promise.resolve((this.sql.listWorkers.all() as WorkerRow[]).map(toWorker));
  }

  registerWorkflows(workflows: ReadonlyArray<{ name: string; version: number }>): Promise<void> {
    const now = Date.now();
    this.db.transaction(() => {
      for (const w of workflows) this.sql.registerWorkflow.run({ ...w, now });
    })();
    return Promise.resolve();
  }

  listWorkflows(): Promise<Array<{ name: string; version: number }>> {
    return Promise.resolve(
      this.sql.listWorkflows.all() as Array<{ name: string; version: number }>,
    );
  }

  // events

  appendEvent(event: Omit<RunEvent, "id" | "at">): Promise<void> {
    this.event(event.runId, event.kind, Date.now(), event.workerId, event.fence, event.detail);
    return Promise.resolve();
  }

  listEvents(runId: string): Promise<RunEvent[]> {
    return Promise.resolve((this.sql.listEvents.all(runId) as EventRow[]).map(toEvent));
  }

  // shutdown reports

  saveShutdownReport(workerId: string, report: string): Promise<void> {
    this.sql.saveShutdown.run({ workerId, at: Date.now(), report });
    return Promise.resolve();
  }

  latestShutdownReport(workerId: string): Promise<ShutdownRecord | undefined> {
    const row = this.sql.latestShutdown.get(workerId) as
      { worker_id: string; at: number; report: string } | undefined;
    return Promise.resolve(row && { workerId: row.worker_id, at: row.at, report: row.report });
  }

  // wake-ups: SQLite has no notifications, but `PRAGMA data_version` changes whenever
  // another connection commits, and reading it costs microseconds.

  onWake(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.wakeTimer) {
      this.lastDataVersion = this.dataVersion();
      this.wakeTimer = setInterval(() => this.checkForCommits(), this.wakeIntervalMs);
      this.wakeTimer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopWakeTimer();
    };
  }

  now(): Promise<number> {
    return Promise.resolve(Date.now());
  }

  close(): Promise<void> {
    this.stopWakeTimer();
    this.listeners.clear();
    if (this.db.open) {
      this.commits.flush();
      this.db.close();
    }
    return Promise.resolve();
  }

  private checkForCommits(): void {
    if (!this.db.open) return;
    const version = this.dataVersion();
    if (version === this.lastDataVersion) return;
    this.lastDataVersion = version;
    for (const listener of this.listeners) listener();
  }

  private dataVersion(): number {
    return this.db.pragma("data_version", { simple: true }) as number;
  }

  private stopWakeTimer(): void {
    if (this.wakeTimer) clearInterval(this.wakeTimer);
    this.wakeTimer = undefined;
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

function prepareStatements(db: Database.Database, fencing: boolean) {
  // Every owner write is conditional on the writer's fence, while the run is live.
  const fenced = fencing ? "fence = @fence" : "1 = 1";
  // A run given up for compensation stays `compensating` but has no owner: not live.
  const live = "status IN ('running','compensating') AND lease_owner IS NOT NULL";
  const claimable = `
    workflow IN (SELECT value FROM json_each(@workflows))
    AND (((status IN ('queued','sleeping') OR (status = 'compensating' AND lease_owner IS NULL))
          AND available_at <= @now)
      OR (status IN ('running','compensating') AND lease_owner IS NOT NULL AND lease_expires_at < @now))`;
  return {
    insertRun: db.prepare(`
      INSERT INTO runs (id, workflow, version, status, input, priority, available_at, created_at, updated_at)
      VALUES (@id, @workflow, @version, 'queued', @input, @priority, @now, @now, @now)
      ON CONFLICT (id) DO NOTHING`),
    getRun: db.prepare(`SELECT * FROM runs WHERE id = ?`),
    listRuns: db.prepare(`
      SELECT * FROM runs
      WHERE (@status IS NULL OR status = @status)
        AND (@workflow IS NULL OR workflow = @workflow)
        AND (@before IS NULL OR (created_at, id) < (SELECT created_at, id FROM runs WHERE id = @before))
      ORDER BY created_at DESC, id DESC LIMIT @limit`),
    countRuns: db.prepare(`SELECT status, count(*) AS n FROM runs GROUP BY status`),
    cancelRun: db.prepare(`
      UPDATE runs SET status = CASE WHEN @compensate = 1 THEN 'compensating' ELSE 'cancelled' END,
        error = CASE WHEN @compensate = 1 THEN @reason ELSE error END,
        lease_owner = NULL, lease_expires_at = NULL, fence = fence + 1, available_at = @now,
        completed_at = CASE WHEN @compensate = 1 THEN NULL ELSE @now END, updated_at = @now
      WHERE id = @id AND status NOT IN ${TERMINAL_SQL}
        AND NOT (@compensate = 1 AND status = 'compensating')
      RETURNING *`),
    reapAbandoned: db.prepare(`
      UPDATE runs SET status = 'compensating', error = @reason, lease_owner = NULL,
        lease_expires_at = NULL, fence = fence + 1, available_at = @now, updated_at = @now
      WHERE workflow = @workflow
        AND ((status = 'queued' AND resumed = 1 AND available_at < @before)
          OR (status = 'running' AND lease_expires_at < @before))
      RETURNING id, fence`),
    anyClaimable: db.prepare(`SELECT 1 FROM runs WHERE ${claimable} LIMIT 1`),
    claimCandidates: db.prepare(`
      SELECT id, CASE WHEN status = 'compensating' AND lease_owner IS NOT NULL
                      THEN 'compensating-expired' ELSE status END AS status,
        lease_owner, lease_expires_at, fence,
        (SELECT kind FROM events e WHERE e.run_id = runs.id ORDER BY e.id DESC LIMIT 1) AS last_event,
        (SELECT at FROM events e WHERE e.run_id = runs.id ORDER BY e.id DESC LIMIT 1) AS last_event_at
      FROM runs WHERE ${claimable}
      ORDER BY priority DESC, (resumed = 1 OR status IN ('running','compensating')) DESC, created_at, id
      LIMIT @limit`),
    claimOne: db.prepare(`
      UPDATE runs SET status = CASE WHEN status = 'compensating' THEN 'compensating' ELSE 'running' END,
        lease_owner = @workerId, lease_expires_at = @expiresAt,
        fence = fence + 1, resumed = 0, updated_at = @now
      WHERE id = @id RETURNING *`),
    renewLeases: db.prepare(`
      UPDATE runs SET lease_expires_at = @expiresAt
      WHERE lease_owner = @workerId AND ${live}
        AND (id, fence) IN (SELECT value ->> 0, value ->> 1 FROM json_each(@pairs))
      RETURNING id, fence`),
    finishRun: db.prepare(`
      UPDATE runs SET status = @status, output = @output, error = coalesce(@error, error), lease_owner = NULL,
        lease_expires_at = NULL, completed_at = @now, updated_at = @now
      WHERE id = @id AND ${fenced} AND ${live}`),
    handoff: db.prepare(`
      UPDATE runs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, resumed = 1,
        interruptions = interruptions + 1, available_at = @availableAt, updated_at = @now
      WHERE id = @id AND ${fenced} AND ${live}`),
    sleep: db.prepare(`
      UPDATE runs SET status = 'sleeping', lease_owner = NULL, lease_expires_at = NULL,
        available_at = @availableAt, updated_at = @now
      WHERE id = @id AND ${fenced} AND ${live}`),
    toCompensate: db.prepare(`
      UPDATE runs SET status = 'compensating', lease_owner = NULL, lease_expires_at = NULL,
        available_at = @availableAt, updated_at = @now
      WHERE id = @id AND ${fenced} AND ${live}`),
    beginCompensation: db.prepare(`
      UPDATE runs SET status = 'compensating', error = @error, updated_at = @now
      WHERE id = @id AND ${fenced} AND status = 'running'`),
    requeue: db.prepare(`
      UPDATE runs SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, resumed = 1,
        available_at = @availableAt, updated_at = @now
      WHERE id = @id AND ${fenced} AND ${live}`),
    loadJournal: db.prepare(`SELECT * FROM steps WHERE run_id = ? ORDER BY seq`),
    writeStep: db.prepare(`
      INSERT INTO steps (run_id, seq, name, kind, status, output, error, progress, attempts,
        idempotency_key, fence, worker_id, started_at, updated_at)
      SELECT @runId, @seq, @name, @kind, @status, @output, @error, @progress, @attempts,
        @idempotencyKey, @fence, @workerId, @startedAt, @now
      FROM runs WHERE id = @runId AND ${fenced} AND ${live}
      ON CONFLICT (run_id, seq) DO UPDATE SET
        status = excluded.status, output = excluded.output, error = excluded.error,
        progress = CASE WHEN excluded.status IN ('completed','failed') THEN NULL
                        ELSE coalesce(excluded.progress, steps.progress) END,
        attempts = excluded.attempts, idempotency_key = coalesce(excluded.idempotency_key, steps.idempotency_key),
        fence = excluded.fence, worker_id = excluded.worker_id,
        started_at = coalesce(excluded.started_at, steps.started_at), updated_at = excluded.updated_at
      WHERE steps.status NOT IN ('completed','failed') AND steps.name = excluded.name`),
    registerWorker: db.prepare(`
      INSERT INTO workers (id, state, host, pid, concurrency, started_at, heartbeat_at)
      VALUES (@id, @state, @host, @pid, @concurrency, @now, @now)
      ON CONFLICT (id) DO UPDATE SET state = excluded.state, heartbeat_at = excluded.heartbeat_at`),
    setWorkerState: db.prepare(`
      UPDATE workers SET state = @state, heartbeat_at = @now,
        stopped_at = CASE WHEN @state = 'stopped' THEN @now ELSE stopped_at END
      WHERE id = @id`),
    touchWorker: db.prepare(`UPDATE workers SET heartbeat_at = @now WHERE id = @id`),
    listWorkers: db.prepare(`SELECT * FROM workers ORDER BY started_at DESC`),
    registerWorkflow: db.prepare(`
      INSERT INTO workflows (name, version, registered_at) VALUES (@name, @version, @now)
      ON CONFLICT (name) DO UPDATE SET version = max(version, excluded.version), registered_at = excluded.registered_at`),
    listWorkflows: db.prepare(`SELECT name, version FROM workflows ORDER BY name`),
    insertEvent: db.prepare(`
      INSERT INTO events (run_id, kind, at, worker_id, fence, detail)
      VALUES (@runId, @kind, @at, @workerId, @fence, @detail)`),
    listEvents: db.prepare(`SELECT * FROM events WHERE run_id = ? ORDER BY id`),
    saveShutdown: db.prepare(
      `INSERT INTO shutdowns (worker_id, at, report) VALUES (@workerId, @at, @report)`,
    ),
    latestShutdown: db.prepare(
      `SELECT * FROM shutdowns WHERE worker_id = ? ORDER BY id DESC LIMIT 1`,
    ),
  };
}
