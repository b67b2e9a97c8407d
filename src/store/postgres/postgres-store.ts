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
import { Batcher } from "./postgres-batch.js";
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
import {
  JOURNAL_COLUMNS,
  postgresStatements,
  wakeChannel,
  type PostgresStatements,
} from "./postgres-sql.js";
import { WakeListener } from "./postgres-wake.js";

/** A batched write's answer: applied, and whether an earlier try's answer was lost. */
type Applied = { ok: boolean; ambiguous: boolean };
type FinishStatus = "completed" | "failed" | "compensated";
type Finish = { lease: Lease; status: FinishStatus; output: string | null; error: string | null };
type BatchedRelease = "handoff" | "sleep" | "compensate";
type Release = { lease: Lease; delayMs: number };

/** Connections the pool keeps open while idle (fewer if the pool is smaller). */
const WARM_CONNECTIONS = 3;

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
  /** Group commit (see `Batcher`): one line per kind of write. */
  private readonly batches: {
    createRun: Batcher<NewRun, RunRow | undefined>;
    writeStep: Batcher<{ lease: Lease; write: StepWrite }, Applied>;
    finish: Batcher<Finish, Applied>;
    release: Record<BatchedRelease, Batcher<Release, Applied>>;
  };
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
    // The LISTEN connection's health check must fail rather than hang on a dead network.
    const listenConfig = { ...clientConfig, query_timeout: 5_000 };
    this.wake = new WakeListener(() => new pg.Client(listenConfig), wakeChannel(schema));
  }

  // runs

  async createRun(run: NewRun): Promise<{ run: RunRecord; created: boolean }> {
    const row = await this.batches.createRun.submit(run);
    if (row) return { run: toRun(row), created: true };
    // A retry after a lost answer may land here for a run this call did create.
    const existing = await this.query<RunRow>(this.sql.getRun, [run.id], "idempotent");
    return { run: toRun(existing.rows[0]!), created: false };
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
    return this.finish(lease, "completed", output, null);
  }

  failRun(lease: Lease, error: string): Promise<boolean> {
    return this.finish(lease, "failed", null, error);
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
    if (!result.ambiguous || !(await this.hasEvent(lease, "compensating"))) return false;
    const run = await this.getRun(lease.runId);
    return !(run?.fence === lease.fence && run.leaseOwner === null);
  }

  markCompensated(lease: Lease): Promise<boolean> {
    return this.finish(lease, "compensated", null, null);
  }

  async releaseRun(lease: Lease, reason: ReleaseReason, delayMs = 0): Promise<boolean> {
    const { runId, fence, workerId } = lease;
    if (reason === "retry") {
      const result = await this.query(this.sql.requeue, [runId, fence, delayMs], "fenced");
      if (result.rowCount === 1) return true;
      if (!result.ambiguous) return false;
      // No event marks a retry; the run itself tells, unless another worker claimed it since.
      const run = await this.getRun(runId);
      return run?.status === "queued" && run.fence === fence;
    }
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

  // journal

  async loadJournal(runId: string): Promise<JournalEntry[]> {
    const { rows } = await this.query<StepRow>(this.sql.loadJournal, [runId], "idempotent");
    return rows.map(toJournalEntry);
  }

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

  private async finish(
    lease: Lease,
    status: FinishStatus,
    output: string | null,
    error: string | null,
  ): Promise<boolean> {
    const result = await this.batches.finish.submit({ lease, status, output, error });
    if (result.ok) return true;
    return result.ambiguous && this.hasEvent(lease, status);
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

  private async releaseAlone(reason: BatchedRelease, { lease, delayMs }: Release) {
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
    send: () => Promise<pg.QueryResult<R> & { ambiguous: boolean }>,
    answer: (rows: R[]) => boolean[],
    alone: () => Promise<Applied[]>,
  ): Promise<Applied[]> {
    let result: pg.QueryResult<R> & { ambiguous: boolean };
    try {
      result = await send();
    } catch (error) {
      if (classifyFailure(error, false) !== "fatal") throw error;
      return alone();
    }
    return answer(result.rows).map((ok) => ({ ok, ambiguous: result.ambiguous }));
  }

  /** Whether the owner's own state change committed: its event row has this lease's fence. */
  private async hasEvent(lease: Lease, kind: RunEvent["kind"]): Promise<boolean> {
    const values = [lease.runId, kind, lease.fence, lease.workerId];
    const { rowCount } = await this.query(this.sql.findEvent, values, "idempotent");
    return rowCount === 1;
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
  ): Promise<pg.QueryResult<R> & { ambiguous: boolean }> {
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

/** A journal returned by the claim: a JSON array of entries, each an array of `JOURNAL_COLUMNS`. */
function journalFromJson(json: string): JournalEntry[] {
  return (JSON.parse(json) as unknown[][]).map((values) => {
    const row: Record<string, unknown> = {};
    JOURNAL_COLUMNS.forEach((column, i) => (row[column] = values[i]));
    return toJournalEntry(row as StepRow);
  });
}

/** A short hash of a statement's text, so that a prepared statement's name names that text. */
function hashText(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}
