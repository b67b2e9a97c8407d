import type { JournalEntry, RunEvent, RunRecord, RunStatus } from "./store/store.js";
import { deserializeError, type SerializedError } from "./workflow/errors.js";
import { decodeJson } from "./workflow/serialize.js";

/** A run as callers see it: payloads decoded, lease details kept for operators. */
export type RunSummary = {
  id: string;
  workflow: string;
  version: number;
  status: RunStatus;
  input: unknown;
  output: unknown;
  error: SerializedError | undefined;
  priority: number;
  fence: number;
  leaseOwner: string | null;
  interruptions: number;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
};

/** One journal entry, decoded. */
export type StepView = {
  seq: number;
  name: string;
  kind: JournalEntry["kind"];
  status: JournalEntry["status"];
  output: unknown;
  error: SerializedError | undefined;
  progress: unknown;
  attempts: number;
  /** Effects and compensations: the key the external system dedupes on. */
  idempotencyKey: string | null;
  fence: number;
  workerId: string;
  startedAt: number | null;
  updatedAt: number;
};

/** A run with its journal and its timeline of events. */
export type RunDetails = RunSummary & { steps: StepView[]; events: RunEvent[] };

export function toRunSummary(run: RunRecord): RunSummary {
  return {
    id: run.id,
    workflow: run.workflow,
    version: run.version,
    status: run.status,
    input: decodeJson(run.input),
    output: decodeJson(run.output),
    error: run.error === null ? undefined : (JSON.parse(run.error) as SerializedError),
    priority: run.priority,
    fence: run.fence,
    leaseOwner: run.leaseOwner,
    interruptions: run.interruptions,
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
    completedAt: run.completedAt,
  };
}

export function toStepView(entry: JournalEntry): StepView {
  return {
    seq: entry.seq,
    name: entry.name,
    kind: entry.kind,
    status: entry.status,
    output: decodeJson(entry.output),
    error: entry.error === null ? undefined : (JSON.parse(entry.error) as SerializedError),
    progress: decodeJson(entry.progress),
    attempts: entry.attempts,
    idempotencyKey: entry.idempotencyKey,
    fence: entry.fence,
    workerId: entry.workerId,
    startedAt: entry.startedAt,
    updatedAt: entry.updatedAt,
  };
}

/** The error `run.result()` rejects with for a run that ended in `error`. */
export function runError(summary: RunSummary): Error {
  return deserializeError(
    summary.error ?? { name: "Error", message: `run ${summary.id} ended ${summary.status}` },
  );
}
