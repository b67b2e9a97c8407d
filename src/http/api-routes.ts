import type { ServerResponse } from "node:http";
import { z } from "zod";
import { countOrphanedRuns, isOrphaned } from "../metrics/orphaned-runs.js";
import { toRunSummary, toStepView, type RunSummary, type StepView } from "../run-view.js";
import {
  RUN_STATUSES,
  type JournalEntry,
  type RunRecord,
  type RunStatus,
  type Store,
  type WorkerRecord,
  type WorkerState,
} from "../store/store.js";
import {
  buildTimeline,
  findRecoveries,
  type Recovery,
  type TimelineEntry,
} from "../telemetry/run-timeline.js";
import { json, type ManagementRoute } from "./management-server.js";

/**
 * The JSON API behind the dashboard, as management-server routes (access `read`: open on
 * loopback, behind the token on any other address):
 *
 * - `GET /api/overview`: runs by status, orphaned runs, workers by state.
 * - `GET /api/runs?status=&workflow=&limit=&before=`: runs, newest first, one page.
 * - `GET /api/runs/:id`: one run, its journal, its timeline and its recoveries.
 * - `GET /api/workers?state=&limit=`: workers, newest first, with their last shutdown report.
 *
 * Everything is read from the store, so any worker of a fleet answers for all of it.
 * Payloads (input, output, step values, progress, errors, reports) are decoded JSON.
 */

/** What the API reads of a store. */
export type ApiStore = Pick<
  Store,
  | "getRun"
  | "listRuns"
  | "countRuns"
  | "loadJournal"
  | "listEvents"
  | "listWorkers"
  | "latestShutdownReport"
  | "now"
>;

export type ApiRoutesOptions = {
  /** Runs per page when `limit` is not given. (Default: 50) */
  defaultLimit?: number;
  /** The largest `limit` accepted. (Default: 500) */
  maxLimit?: number;
};

/** A run in a list: no payloads (they may be large), its ownership spelled out. */
export type ApiRunItem = {
  id: string;
  workflow: string;
  version: number;
  status: RunStatus;
  priority: number;
  fence: number;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  /** Owned, but the owner's lease has expired and nobody took the run over yet. */
  orphaned: boolean;
  /** Handoffs by shutdown so far. */
  interruptions: number;
  availableAt: number;
  createdAt: number;
  updatedAt: number;
  completedAt: number | null;
  error: { name: string; message: string } | null;
};

export type ApiRunList = {
  runs: ApiRunItem[];
  /** Pass as `before` for the next page. */ next: string | null;
};

export type ApiJournalEntry = Omit<StepView, "error"> & {
  error: StepView["error"] | null;
  idempotencyKey: string | null;
};

export type ApiRunDetails = {
  now: number;
  run: ApiRunItem & Pick<RunSummary, "input" | "output"> & { error: RunSummary["error"] | null };
  journal: ApiJournalEntry[];
  timeline: TimelineEntry[];
  recoveries: Recovery[];
};

export type ApiWorker = WorkerRecord & {
  /** Time since the worker's last heartbeat, on the store's clock. */
  heartbeatAgeMs: number;
  lastShutdown: { at: number; report: unknown } | null;
};

export type ApiWorkerList = { now: number; workers: ApiWorker[] };

export type ApiOverview = {
  now: number;
  runs: Record<RunStatus, number>;
  orphaned: number;
  workers: Record<WorkerState, number>;
};

const WORKER_STATES = ["starting", "running", "draining", "stopped"] as const;

/** A refusal of the request itself: answered 4xx with its message. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The dashboard's JSON routes over `store`. */
export function apiRoutes(store: ApiStore, options: ApiRoutesOptions = {}): ManagementRoute[] {
  const maxLimit = options.maxLimit ?? 500;
  const limit = z.coerce
    .number()
    .int()
    .min(1)
    .max(maxLimit)
    .default(options.defaultLimit ?? 50);
  const runQuery = z
    .object({
      status: z.enum(RUN_STATUSES).optional(),
      workflow: z.string().min(1).max(200).optional(),
      before: z.string().min(1).max(200).optional(),
      limit,
    })
    .strict();
  const workerQuery = z.object({ state: z.enum(WORKER_STATES).optional(), limit }).strict();

  const route = (
    path: string,
    answer: (url: URL) => Promise<{ status?: number; body: unknown }>,
  ): ManagementRoute => ({
    method: "GET",
    path,
    access: "read",
    handle: async (_req, res, url) => {
      try {
        const { status = 200, body } = await answer(url);
        send(res, status, body);
      } catch (error) {
        if (!(error instanceof RequestError)) throw error;
        send(res, error.status, { error: error.message });
      }
    },
  });

  return [
    route("/api/overview", async () => ({ body: await overview(store) })),
    route("/api/runs", async (url) => {
      const query = parse(runQuery, url);
      const records = await store.listRuns(query);
      const now = await store.now();
      const body: ApiRunList = {
        runs: records.map((run) => runItem(run, now)),
        next: records.length === query.limit ? records[records.length - 1]!.id : null,
      };
      return { body };
    }),
    route("/api/runs/", async (url) => {
      const id = runIdOf(url);
      const details = await runDetails(store, id);
      return details
        ? { body: details }
        : { status: 404, body: { error: `no run with id ${JSON.stringify(id)}` } };
    }),
    route("/api/workers", async (url) => {
      const query = parse(workerQuery, url);
      const now = await store.now();
      const workers = (await store.listWorkers())
        .filter((w) => query.state === undefined || w.state === query.state)
        .slice(0, query.limit);
      const body: ApiWorkerList = {
        now,
        workers: await Promise.all(workers.map((w) => workerItem(store, w, now))),
      };
      return { body };
    }),
  ];
}

/** One run with its journal, its timeline and its recoveries; undefined when there is none. */
export async function runDetails(store: ApiStore, id: string): Promise<ApiRunDetails | undefined> {
  const run = await store.getRun(id);
  if (!run) return undefined;
  const [journal, events, now] = await Promise.all([
    store.loadJournal(id),
    store.listEvents(id),
    store.now(),
  ]);
  const summary = toRunSummary(run);
  const timeline = buildTimeline(events, journal);
  return {
    now,
    run: {
      ...runItem(run, now),
      input: summary.input ?? null,
      output: summary.output ?? null,
      error: summary.error ?? null,
    },
    journal: journal.map(journalItem),
    timeline,
    recoveries: findRecoveries(timeline),
  };
}

async function overview(store: ApiStore): Promise<ApiOverview> {
  const [counts, orphaned, workers, now] = await Promise.all([
    store.countRuns(),
    countOrphanedRuns(store),
    store.listWorkers(),
    store.now(),
  ]);
  const runs = Object.fromEntries(RUN_STATUSES.map((s) => [s, counts[s] ?? 0])) as Record<
    RunStatus,
    number
  >;
  const byState = Object.fromEntries(WORKER_STATES.map((s) => [s, 0])) as Record<
    WorkerState,
    number
  >;
  for (const worker of workers) byState[worker.state] += 1;
  return { now, runs, orphaned, workers: byState };
}

function runItem(run: RunRecord, now: number): ApiRunItem {
  return {
    id: run.id,
    workflow: run.workflow,
    version: run.version,
    status: run.status,
    priority: run.priority,
    fence: run.fence,
    leaseOwner: run.leaseOwner,
    leaseExpiresAt: run.leaseExpiresAt,
    orphaned: isOrphaned(run, now),
    interruptions: run.interruptions,
    availableAt: run.availableAt,
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
    completedAt: run.completedAt,
    error: briefError(run.error),
  };
}

function journalItem(entry: JournalEntry): ApiJournalEntry {
  const view = toStepView(entry);
  // Every field present, null when empty, so a dashboard reads one shape.
  return {
    ...view,
    output: view.output ?? null,
    error: view.error ?? null,
    progress: view.progress ?? null,
    idempotencyKey: entry.idempotencyKey ?? null,
  };
}

async function workerItem(store: ApiStore, worker: WorkerRecord, now: number): Promise<ApiWorker> {
  const shutdown = await store.latestShutdownReport(worker.id);
  return {
    ...worker,
    heartbeatAgeMs: Math.max(0, now - worker.heartbeatAt),
    lastShutdown: shutdown ? { at: shutdown.at, report: decodeReport(shutdown.report) } : null,
  };
}

function parse<T>(schema: z.ZodType<T>, url: URL): T {
  const parsed = schema.safeParse(Object.fromEntries(url.searchParams));
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue?.path.length ? `query parameter ${issue.path.join(".")}` : "query";
  throw new RequestError(400, `${where}: ${issue?.message ?? "invalid"}`);
}

function runIdOf(url: URL): string {
  const raw = url.pathname.slice("/api/runs/".length);
  if (raw === "") throw new RequestError(404, "no run id in the path: GET /api/runs/<id>");
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new RequestError(400, `run id ${JSON.stringify(raw)} is not a valid URL path segment`);
  }
}

function briefError(error: string | null): { name: string; message: string } | null {
  if (error === null) return null;
  try {
    const parsed = JSON.parse(error) as { name?: unknown; message?: unknown };
    return {
      name: typeof parsed.name === "string" ? parsed.name : "Error",
      message: typeof parsed.message === "string" ? parsed.message : "",
    };
  } catch {
    return { name: "Error", message: error };
  }
}

function decodeReport(report: string): unknown {
  try {
    return JSON.parse(report) as unknown;
  } catch {
    return report;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.setHeader("Cache-Control", "no-store");
  json(res, status, body);
}
