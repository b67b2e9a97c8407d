import type { JournalEntry, RunEvent, RunRecord, WorkerRecord } from "./store.js";

/**
 * Row shapes as both backends return them (snake_case columns; times, fences and counts as
 * numbers), and their mapping to the store's records.
 */

export type RunRow = {
  id: string;
  workflow: string;
  version: number;
  status: string;
  input: string | null;
  output: string | null;
  error: string | null;
  priority: number;
  fence: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  available_at: number;
  interruptions: number;
  /** SQLite stores 0/1, PostgreSQL a boolean. */
  resumed: number | boolean;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
};

export function toRun(row: RunRow): RunRecord {
  return {
    id: row.id,
    workflow: row.workflow,
    version: row.version,
    status: row.status as RunRecord["status"],
    input: row.input,
    output: row.output,
    error: row.error,
    priority: row.priority,
    fence: row.fence,
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at,
    availableAt: row.available_at,
    interruptions: row.interruptions,
    resumed: Boolean(row.resumed),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    completedAt: row.completed_at,
  };
}

export type StepRow = {
  run_id: string;
  seq: number;
  name: string;
  kind: string;
  status: string;
  output: string | null;
  error: string | null;
  progress: string | null;
  attempts: number;
  idempotency_key: string | null;
  fence: number;
  worker_id: string;
  started_at: number | null;
  updated_at: number;
};

export function toJournalEntry(row: StepRow): JournalEntry {
  return {
    runId: row.run_id,
    seq: row.seq,
    name: row.name,
    kind: row.kind as JournalEntry["kind"],
    status: row.status as JournalEntry["status"],
    output: row.output,
    error: row.error,
    progress: row.progress,
    attempts: row.attempts,
    idempotencyKey: row.idempotency_key,
    fence: row.fence,
    workerId: row.worker_id,
    startedAt: row.started_at,
    updatedAt: row.updated_at,
  };
}

export type WorkerRow = {
  id: string;
  state: string;
  host: string;
  pid: number;
  concurrency: number;
  started_at: number;
  heartbeat_at: number;
  stopped_at: number | null;
};

export function toWorker(row: WorkerRow): WorkerRecord {
  return {
    id: row.id,
    state: row.state as WorkerRecord["state"],
    host: row.host,
    pid: row.pid,
    concurrency: row.concurrency,
    startedAt: row.started_at,
    heartbeatAt: row.heartbeat_at,
    stoppedAt: row.stopped_at,
  };
}

export type EventRow = {
  id: number;
  run_id: string;
  kind: string;
  at: number;
  worker_id: string | null;
  fence: number | null;
  detail: string | null;
};

export function toEvent(row: EventRow): RunEvent {
  return {
    id: row.id,
    runId: row.run_id,
    kind: row.kind as RunEvent["kind"],
    at: row.at,
    workerId: row.worker_id,
    fence: row.fence,
    detail: row.detail,
  };
}
