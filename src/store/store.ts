/**
 * The storage contract every backend keeps. It is narrow on purpose, grouped by
 * aggregate: runs, leases, journal, workers, events, shutdown reports.
 *
 * Time is the store's: leases, availability and expiry are computed on the store's
 * clock (the database's for Postgres), never passed in by a worker, so skewed clocks
 * between machines cannot break ownership. Durations are passed as milliseconds.
 *
 * Every write made on behalf of a run's owner carries a {@link Lease}; the store
 * applies it only while the run is `running` (or `compensating`) with that exact fence, and reports
 * `false` otherwise (a stale writer). Payloads are JSON text, encoded by the caller.
 */

export const RUN_STATUSES = [
  "queued",
  "running",
  "sleeping",
  "completed",
  "failed",
  "cancelled",
  "compensating",
  "compensated",
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const TERMINAL_STATUSES: readonly RunStatus[] = [
  "completed",
  "failed",
  "cancelled",
  "compensated",
];

export type RunRecord = {
  id: string;
  workflow: string;
  version: number;
  status: RunStatus;
  /** JSON text. */
  input: string | null;
  output: string | null;
  /** JSON text of a SerializedError. */
  error: string | null;
  priority: number;
  /** Grows by one at every claim; every owner write is conditional on it. */
  fence: number;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  availableAt: number;
  /** Handoffs by shutdown; they never consume step attempts. */
  interruptions: number;
  /** Set by a handoff or takeover: resumed work is claimed before new work. */
  resumed: boolean;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
};

export type NewRun = {
  id: string;
  workflow: string;
  version: number;
  input: string | null;
  priority: number;
};

/** Proof of ownership a worker shows with each write. */
export type Lease = { runId: string; fence: number; workerId: string };

export type ClaimedRun = RunRecord & {
  /** True when the previous owner's lease expired (a crash or a stall), not a queued run. */
  takeover: boolean;
  /**
   * Set when the run is resumed after an interruption: `handoff` (released by a shutting
   * down worker) or `crash` (its owner's lease expired), and how long ago that was on the
   * store's clock, so a worker on another clock can measure the recovery.
   */
  resumedFrom?: { cause: "handoff" | "crash"; msAgo: number };
  /**
   * The run's journal, when the store reads it along with the claim (optional: a store may
   * leave it out, and the worker then calls `loadJournal`). It must hold every write of
   * earlier owners, so it is read after the claim committed (or known empty: a run claimed
   * for the first time). A promise, so that the claim answers without waiting for it (one
   * read for the whole batch); it rejects only as `loadJournal` would.
   */
  journal?: Promise<JournalEntry[]>;
};

/**
 * `step`: `ctx.step`; `sleep`: a durable timer; `effect`: `ctx.effect` (outbox);
 * `compensation`: the undo of the step at `seq - COMPENSATION_SEQ_BASE`.
 */
export type JournalKind = "step" | "sleep" | "effect" | "compensation";
/**
 * `pending`: an effect's (or compensation's) intent is recorded and its call may have
 * happened (an unknown outcome if the worker died here).
 */
export type JournalStatus = "pending" | "running" | "retrying" | "completed" | "failed";

/** Compensations are journaled at this offset plus the sequence of the step they undo. */
export const COMPENSATION_SEQ_BASE = 1_000_000_000;

/** One record of a run's journal, at sequence `seq`. */
export type JournalEntry = {
  runId: string;
  seq: number;
  name: string;
  kind: JournalKind;
  /**
   * `running`: started, maybe with saved progress; `retrying`: attempts failed so far;
   * `completed`/`failed`: final, returned/thrown on replay without running again.
   */
  status: JournalStatus;
  output: string | null;
  error: string | null;
  progress: string | null;
  /** Attempts that ended (failed or completed). */
  attempts: number;
  /** For effects and compensations: the key the external system dedupes on. */
  idempotencyKey: string | null;
  fence: number;
  workerId: string;
  startedAt: number | null;
  updatedAt: number;
};

export type StepWrite = {
  seq: number;
  name: string;
  kind: JournalKind;
  status: JournalStatus;
  output?: string | null;
  error?: string | null;
  progress?: string | null;
  attempts: number;
  idempotencyKey?: string | null;
  startedAt?: number | null;
};

export type RunListFilter = {
  status?: RunStatus;
  workflow?: string;
  limit?: number;
  /** Keyset paging: runs created before this run id's creation. */
  before?: string;
};

export type WorkerState = "starting" | "running" | "draining" | "stopped";

export type WorkerRecord = {
  id: string;
  state: WorkerState;
  host: string;
  pid: number;
  concurrency: number;
  startedAt: number;
  heartbeatAt: number;
  stoppedAt: number | null;
};

export type RunEventKind =
  | "created"
  | "claimed"
  | "takeover"
  | "handoff"
  | "sleeping"
  | "completed"
  | "failed"
  | "cancelled"
  | "lease-lost"
  | "lease-expired"
  | "compensating"
  | "compensated"
  | "abandoned"
  | "effect-resolved";

export type RunEvent = {
  id: number;
  runId: string;
  kind: RunEventKind;
  at: number;
  workerId: string | null;
  fence: number | null;
  detail: string | null;
};

export type ShutdownRecord = { workerId: string; at: number; report: string };

export type ReleaseReason = "handoff" | "sleep" | "retry" | "compensate";

/** Runs of `workflow` handed off or orphaned for longer than `abandonAfterMs` are compensated. */
export type AbandonRule = { workflow: string; abandonAfterMs: number };

/** What a backend can do; the worker reads these instead of testing the dialect. */
export type StoreCapabilities = {
  /** Whose clock the store uses for leases: the local process's or the database's. */
  clock: "local" | "database";
  /** How other processes learn of new work: by polling a change counter, or notifications. */
  wake: "poll" | "notify";
  /** Several processes on several machines may share this store. */
  multiMachine: boolean;
};

export interface Store {
  readonly capabilities: StoreCapabilities;
  /** A description safe to log (no password). */
  readonly description: string;

  // runs
  /** Inserts the run unless one with the same id exists; returns the stored run either way. */
  createRun(run: NewRun): Promise<{ run: RunRecord; created: boolean }>;
  getRun(id: string): Promise<RunRecord | undefined>;
  listRuns(filter?: RunListFilter): Promise<RunRecord[]>;
  countRuns(): Promise<Partial<Record<RunStatus, number>>>;
  /**
   * Cancels a run that has not ended: lease cleared, fence bumped (its owner's next write
   * is refused), status `cancelled` — or, with `compensate`, `compensating`, for any worker
   * to claim and undo what the run did.
   */
  cancelRun(id: string, options?: { compensate?: boolean }): Promise<RunRecord | undefined>;
  /** Runs that match a rule become `compensating` (fence bumped); returns their ids. */
  reapAbandoned(rules: readonly AbandonRule[]): Promise<string[]>;

  // leases
  /**
   * Claims up to `limit` runs of the given workflows: queued/sleeping runs whose time has
   * come, `compensating` runs nobody holds, and running or compensating runs whose lease
   * expired. Order: priority, then resumed runs, then age. Bumps each run's fence and sets
   * the lease to `leaseMs` from now. A compensating run stays `compensating`.
   */
  claimRuns(
    workerId: string,
    workflows: readonly string[],
    limit: number,
    leaseMs: number,
  ): Promise<ClaimedRun[]>;
  /**
   * Extends, in one statement, the leases the worker is still executing (a run it gave up
   * locally is left to expire); returns those it still holds. A lease missing from the
   * answer was lost: the run was taken over or cancelled.
   */
  renewLeases(
    workerId: string,
    leases: readonly Lease[],
    leaseMs: number,
  ): Promise<Array<{ runId: string; fence: number }>>;
  /** Ends the run as `completed` with its output. Fenced. */
  completeRun(lease: Lease, output: string | null): Promise<boolean>;
  /** Ends the run as `failed` with its error. Fenced. */
  failRun(lease: Lease, error: string): Promise<boolean>;
  /** The run cannot go forward: `compensating`, keeping the lease and recording why. Fenced. */
  beginCompensation(lease: Lease, error: string | null): Promise<boolean>;
  /** Every compensation ran: `compensated`, keeping the recorded reason. Fenced. */
  markCompensated(lease: Lease): Promise<boolean>;
  /**
   * Gives the run up without ending it. `handoff`: queued, resumed first, interruptions+1.
   * `sleep`: sleeping until `delayMs` from now. `retry`: queued after `delayMs`.
   * `compensate`: `compensating`, for another worker to undo. Fenced.
   */
  releaseRun(lease: Lease, reason: ReleaseReason, delayMs?: number): Promise<boolean>;

  // journal
  loadJournal(runId: string): Promise<JournalEntry[]>;
  /** Writes (inserts or updates) the entry at `seq`; a final entry is never changed. Fenced. */
  writeStep(lease: Lease, write: StepWrite): Promise<boolean>;

  // workers
  registerWorker(
    worker: Omit<WorkerRecord, "startedAt" | "heartbeatAt" | "stoppedAt">,
  ): Promise<void>;
  setWorkerState(workerId: string, state: WorkerState): Promise<void>;
  listWorkers(): Promise<WorkerRecord[]>;
  /** Records the workflows a worker can run (the newest version wins). */
  registerWorkflows(workflows: ReadonlyArray<{ name: string; version: number }>): Promise<void>;
  listWorkflows(): Promise<Array<{ name: string; version: number }>>;

  // events
  appendEvent(event: Omit<RunEvent, "id" | "at">): Promise<void>;
  listEvents(runId: string): Promise<RunEvent[]>;

  // shutdown reports
  saveShutdownReport(workerId: string, report: string): Promise<void>;
  latestShutdownReport(workerId: string): Promise<ShutdownRecord | undefined>;

  /**
   * Calls `listener` soon after another process may have added claimable work.
   * Returns a function that stops listening.
   */
  onWake(listener: () => void): () => void;
  /** The store's current time, in epoch milliseconds. */
  now(): Promise<number>;
  close(): Promise<void>;
}
