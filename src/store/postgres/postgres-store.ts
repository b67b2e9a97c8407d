import pg from "pg";
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
import { applyPostgresMigrations } from "./postgres-migrate.js";
import {
  redactPostgresUrl,
  resolvePostgresOptions,
  type PostgresStoreOptions,
  type ResolvedPostgresOptions,
} from "./postgres-options.js";
import { PostgresClaims } from "./postgres-claims.js";
import { GroupWrites } from "./postgres-group-writes.js";
import type { PostgresQuery, QueryResult } from "./postgres-query.js";
import { classifyFailure, withPooledClient, type Replay } from "./postgres-retry.js";
import { pgTypes } from "./postgres-rows.js";
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
import { postgresStatements, wakeChannel, type PostgresStatements } from "./postgres-sql.js";
import { WakeListener } from "./postgres-wake.js";

/** Connections the pool keeps open while idle (fewer if the pool is smaller). */
const WARM_CONNECTIONS = 3;

/**
 * The multi-machine backend: PostgreSQL through a bounded `pg` pool. Claims lock their
 * candidates with `FOR UPDATE SKIP LOCKED`, every lease and availability time is computed
 * on the database clock (machines with skewed clocks cannot break ownership), and new work
 * wakes other workers with NOTIFY on a channel of the schema.
 *
 * The store connects lazily: the constructor opens nothing, and the first call applies
 * the migrations (once per process; concurrent processes serialise on an advisory lock).
 *
 * Retries after a transient connection error (a restart, a failover) are bounded by
 * `retryForMs` and follow the statement's {@link Replay} class: reads and idempotent writes
 * are re-sent; a fenced write is re-sent and, if the re-send is refused, the store checks
 * whether the first try had in fact committed (its event row, or the journal entry, is
 * there with this owner's fence) before answering; claims and appends are re-sent only
 * when nothing reached the server.
 *
 * The claim path is {@link PostgresClaims}; new runs, step writes, run endings and
 * releases go through {@link GroupWrites} (group commit). Both send their statements
 * through this store's `query`.
 */
export class PostgresStore implements Store {
  readonly capabilities: StoreCapabilities = {
    clock: "database",
    wake: "notify",
    multiMachine: true,
  };
  readonly description: string;
  readonly options: ResolvedPostgresOptions;
  /** The pool; exposed for diagnostics and tests. */
  readonly pool: pg.Pool;
  private readonly sql: PostgresStatements;
  /** Statement text to its prepared-statement name (each connection parses it once). */
  private readonly names: Map<string, string>;
  private readonly wake: WakeListener;
  /** Group commit: new runs, step writes, run endings and releases (see `GroupWrites`). */
  private readonly writes: GroupWrites;
  private readonly claims: PostgresClaims;
  private migrated: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: PostgresStoreOptions) {
    this.options = resolvePostgresOptions(options);
    const { connectionString, schema, poolSize, connectTimeoutMs } = this.options;
    this.description = `${redactPostgresUrl(connectionString)} (schema ${schema})`;
    const clientConfig: pg.ClientConfig = {
      connectionString,
      types: pgTypes,
      connectionTimeoutMillis: connectTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      // Shown in pg_stat_activity; an `application_name` in the URL wins.
      application_name: "baton",
    };
    // A few connections stay open while idle (see `warmUp`): a burst of work after a quiet
    // spell — runs handed over by a stopping worker — then waits for no connection setup.
    this.pool = new pg.Pool({
      ...clientConfig,
      max: poolSize,
      min: Math.min(poolSize, WARM_CONNECTIONS),
      idleTimeoutMillis: 30_000,
    });
    // An idle connection that the server closes (a restart) is reported here; the pool
    // drops it and opens another on demand. Without a handler it would crash the process.
    this.pool.on("error", () => undefined);
    this.sql = postgresStatements(schema);
    this.names = new Map(
      Object.entries(this.sql).map(([key, text]) => [text, `baton_${key}_${hashText(text)}`]),
    );
    const query: PostgresQuery = this.query.bind(this);
    this.writes = new GroupWrites(query, this.sql);
    this.claims = new PostgresClaims(query, this.sql, (runId) => this.loadJournal(runId));
    // The LISTEN connection's health check must fail rather than hang on a dead network.
    const listenConfig = { ...clientConfig, query_timeout: 5_000 };
    this.wake = new WakeListener(() => new pg.Client(listenConfig), wakeChannel(schema));
  }

  // runs

  createRun(run: NewRun): Promise<{ run: RunRecord; created: boolean }> {
    return this.writes.createRun(run);
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    const { rows } = await this.query<RunRow>(this.sql.getRun, [id], "idempotent");
    return rows[0] && toRun(rows[0]);
  }

  async listRuns(filter: RunListFilter = {}): Promise<RunRecord[]> {
    const values = [filter.status, filter.workflow, filter.before, filter.limit ?? 100];
    const { rows } = await this.query<RunRow>(this.sql.listRuns, values, "idempotent");
    return rows.map(toRun);
  }

  async countRuns(): Promise<Partial<Record<RunStatus, number>>> {
    const { rows } = await this.query<{ status: RunStatus; n: number }>(
      this.sql.countRuns,
      [],
      "idempotent",
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async cancelRun(
    id: string,
    options: { compensate?: boolean } = {},
  ): Promise<RunRecord | undefined> {
    const compensate = options.compensate === true;
    const reason = compensate
      ? JSON.stringify({ name: "CancelledError", message: `run ${id} was cancelled` })
      : null;
    const values = [id, compensate, reason];
    const { rows, ambiguous } = await this.query<RunRow>(this.sql.cancelRun, values, "fenced");
    if (rows[0]) return toRun(rows[0]);
    if (!ambiguous) return undefined;
    // The first try may have cancelled it before its answer was lost.
    const run = await this.getRun(id);
    if (!compensate) return run?.status === "cancelled" ? run : undefined;
    if (run?.status !== "compensating") return undefined;
    const found = await this.query(this.sql.findCompensatingCancel, [id], "idempotent");
    return found.rowCount === 1 ? run : undefined;
  }

  async reapAbandoned(rules: readonly AbandonRule[]): Promise<string[]> {
    if (rules.length === 0) return [];
    const values = [
      rules.map((r) => r.workflow),
      rules.map((r) => r.abandonAfterMs),
      rules.map((r) =>
        JSON.stringify({
          name: "AbandonedError",
          message: `not resumed within abandonAfterMs (${r.abandonAfterMs} ms) of being handed off or orphaned`,
        }),
      ),
    ];
    // Re-sent after a lost answer (see `Replay`): a second pass cannot reap a run twice.
    const { rows } = await this.query<{ id: string }>(this.sql.reapAbandoned, values, "idempotent");
    return rows.map((r) => r.id);
  }

  // leases

  claimRuns(
    workerId: string,
    workflows: readonly string[],
    limit: number,
    leaseMs: number,
  ): Promise<ClaimedRun[]> {
    return this.claims.claimRuns(workerId, workflows, limit, leaseMs);
  }

  async renewLeases(
    workerId: string,
    leases: readonly Lease[],
    leaseMs: number,
  ): Promise<Array<{ runId: string; fence: number }>> {
    const values = [workerId, leases.map((l) => l.runId), leases.map((l) => l.fence), leaseMs];
    // Retrying past a third of the lease would keep the worker from self-fencing in time.
    const budget = Math.min(this.options.retryForMs, Math.floor(leaseMs / 3));
    const { rows } = await this.query<{ id: string; fence: number }>(
      this.sql.renewLeases,
      values,
      "idempotent",
      budget,
    );
    return rows.map((r) => ({ runId: r.id, fence: r.fence }));
  }

  completeRun(lease: Lease, output: string | null): Promise<boolean> {
    return this.writes.finish(lease, "completed", output, null);
  }

  failRun(lease: Lease, error: string): Promise<boolean> {
    return this.writes.finish(lease, "failed", null, error);
  }

  /**
   * After a lost answer, the `compensating` event of this lease (fence and worker) shows
   * that a transition to compensating committed: this one, or a release for compensation
   * (`releaseRun`), the only other statement that writes it. While the run is still at
   * this fence, its lease tells them apart: kept here, cleared by the release.
   */
  async beginCompensation(lease: Lease, error: string | null): Promise<boolean> {
    const values = [lease.runId, lease.fence, error, lease.workerId];
    const result = await this.query(this.sql.beginCompensation, values, "fenced");
    if (result.rowCount === 1) return true;
    if (!result.ambiguous || !(await this.writes.hasEvent(lease, "compensating"))) return false;
    const run = await this.getRun(lease.runId);
    return !(run?.fence === lease.fence && run.leaseOwner === null);
  }

  markCompensated(lease: Lease): Promise<boolean> {
    return this.writes.finish(lease, "compensated", null, null);
  }

  async releaseRun(lease: Lease, reason: ReleaseReason, delayMs = 0): Promise<boolean> {
    const { runId, fence } = lease;
    if (reason === "retry") {
      const result = await this.query(this.sql.requeue, [runId, fence, delayMs], "fenced");
      if (result.rowCount === 1) return true;
      if (!result.ambiguous) return false;
      // No event marks a retry; the run itself tells, unless another worker claimed it since.
      const run = await this.getRun(runId);
      return run?.status === "queued" && run.fence === fence;
    }
    return this.writes.release(lease, reason, delayMs);
  }

  // journal

  async loadJournal(runId: string): Promise<JournalEntry[]> {
    const { rows } = await this.query<StepRow>(this.sql.loadJournal, [runId], "idempotent");
    return rows.map(toJournalEntry);
  }

  writeStep(lease: Lease, write: StepWrite): Promise<boolean> {
    return this.writes.writeStep(lease, write);
  }

  // workers

  async registerWorker(
    worker: Omit<WorkerRecord, "startedAt" | "heartbeatAt" | "stoppedAt">,
  ): Promise<void> {
    const values = [worker.id, worker.state, worker.host, worker.pid, worker.concurrency];
    await this.query(this.sql.registerWorker, values, "idempotent");
  }

  async setWorkerState(workerId: string, state: WorkerState): Promise<void> {
    await this.query(this.sql.setWorkerState, [workerId, state], "idempotent");
  }

  async listWorkers(): Promise<WorkerRecord[]> {
    const { rows } = await this.query<WorkerRow>(this.sql.listWorkers, [], "idempotent");
    return rows.map(toWorker);
  }

  async registerWorkflows(
    workflows: ReadonlyArray<{ name: string; version: number }>,
  ): Promise<void> {
    // One row per name (an upsert may not touch a row twice), the newest version winning.
    const newest = new Map<string, number>();
    for (const w of workflows)
      newest.set(w.name, Math.max(w.version, newest.get(w.name) ?? w.version));
    if (newest.size === 0) return;
    const values = [[...newest.keys()], [...newest.values()]];
    await this.query(this.sql.registerWorkflows, values, "idempotent");
  }

  async listWorkflows(): Promise<Array<{ name: string; version: number }>> {
    const { rows } = await this.query<{ name: string; version: number }>(
      this.sql.listWorkflows,
      [],
      "idempotent",
    );
    return rows;
  }

  // events

  async appendEvent(event: Omit<RunEvent, "id" | "at">): Promise<void> {
    const values = [event.runId, event.kind, event.workerId, event.fence, event.detail];
    await this.query(this.sql.appendEvent, values, "once");
  }

  async listEvents(runId: string): Promise<RunEvent[]> {
    const { rows } = await this.query<EventRow>(this.sql.listEvents, [runId], "idempotent");
    return rows.map(toEvent);
  }

  // shutdown reports

  async saveShutdownReport(workerId: string, report: string): Promise<void> {
    await this.query(this.sql.saveShutdown, [workerId, report], "once");
  }

  async latestShutdownReport(workerId: string): Promise<ShutdownRecord | undefined> {
    const { rows } = await this.query<{ worker_id: string; at: number; report: string }>(
      this.sql.latestShutdown,
      [workerId],
      "idempotent",
    );
    const row = rows[0];
    return row && { workerId: row.worker_id, at: row.at, report: row.report };
  }

  // wake-ups and time

  onWake(listener: () => void): () => void {
    return this.wake.add(listener);
  }

  /** How many times the LISTEN connection was (re)established; for tests and diagnostics. */
  get wakeConnections(): number {
    return this.wake.connections;
  }

  async now(): Promise<number> {
    const { rows } = await this.query<{ now: number }>(this.sql.now, [], "idempotent");
    return rows[0]!.now;
  }

  /** Ends the LISTEN connection and the pool, after the statements in flight. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.wake.close();
      await this.migrated?.catch(() => undefined);
      await this.pool.end();
    })();
    return this.closing;
  }

  /** Applies the migrations before the first statement; retried on the next call if it failed. */
  ready(): Promise<void> {
    this.migrated ??= this.withClient((client) =>
      applyPostgresMigrations(client, this.options.schema),
    ).then(
      () => this.warmUp(),
      (error: unknown) => {
        this.migrated = undefined;
        throw error;
      },
    );
    return this.migrated;
  }

  /**
   * Opens the pool's idle minimum in the background once the schema is ready. Opening a
   * connection costs a server process and an authentication, several milliseconds; a
   * worker that sat idle on one connection would otherwise pay that in the middle of a
   * handoff, when the claim, the journal read and the first writes want a connection each.
   * A failure here is ignored: the statements open what they need.
   */
  private warmUp(): void {
    const missing = (this.pool.options.min ?? 0) - this.pool.totalCount;
    for (let i = 0; i < missing; i++) {
      this.pool.connect().then(
        (client) => client.release(),
        () => undefined,
      );
    }
  }

  /**
   * Runs one statement on a pooled connection, retrying transient failures for up to
   * `budgetMs` as its {@link Replay} class allows. `ambiguous` is true when an earlier try
   * may have committed (its answer was lost).
   */
  private async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values: unknown[],
    replay: Replay,
    budgetMs = this.options.retryForMs,
  ): Promise<QueryResult<R>> {
    await this.ready();
    let ambiguous = false;
    const result = await this.withClient(
      async (client) => {
        try {
          const name = this.names.get(text);
          return await client.query<R>(name ? { name, text, values } : { text, values });
        } catch (error) {
          if (classifyFailure(error, false) === "unknown") ambiguous = true;
          throw error;
        }
      },
      replay,
      budgetMs,
    );
    return Object.assign(result, { ambiguous });
  }

  /** Checks a connection out for `use`, with the retry policy described on the class. */
  private withClient<T>(
    use: (client: pg.PoolClient) => Promise<T>,
    replay: Replay = "idempotent",
    budgetMs = this.options.retryForMs,
  ): Promise<T> {
    if (this.closing) return Promise.reject(new Error(`the store ${this.description} is closed`));
    return withPooledClient(this.pool, use, { replay, budgetMs, stop: () => !!this.closing });
  }
}

/** A short hash of a statement's text, so that a prepared statement's name names that text. */
function hashText(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}
