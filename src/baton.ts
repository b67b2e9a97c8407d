import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { z } from "zod";
import { createLogger } from "./internal/logger.js";
import { BatonMetrics } from "./metrics/baton-metrics.js";
import { RunHandle } from "./run-handle.js";
import { toRunSummary, toStepView, type RunDetails, type RunSummary } from "./run-view.js";
import { DEFAULT_STORE_URL, openStore } from "./store/open-store.js";
import type { RunListFilter, Store } from "./store/store.js";
import { isWorkflow } from "./workflow/define-workflow.js";
import { ConfigError, ValidationError } from "./workflow/errors.js";
import { DEFAULT_MAX_PAYLOAD_BYTES, encodeJson } from "./workflow/serialize.js";
import type { Workflow } from "./workflow/types.js";
import { Worker, type WorkerLifecycleState } from "./worker/worker.js";
import type { WorkerOptions } from "./worker/worker-options.js";

export type BatonOptions = {
  /**
   * A store URL (`sqlite:PATH`, `postgres://…`) or a store.
   * (Default: `BATON_STORE`, else `sqlite:baton.db`)
   */
  store?: string | Store;
  /** The workflows this process can start and run. */
  workflows?: readonly Workflow<never, unknown>[];
  /** Largest input, step output or run output, in bytes of JSON. (Default: 1 MiB) */
  maxPayloadBytes?: number;
  /** (Default: pino on stderr at `BATON_LOG_LEVEL`, else warn) */
  logger?: Logger;
};

export type StartOptions = {
  /**
   * The run's id. Starting again with the same id returns the existing run instead of a
   * second one. (Default: a random UUID)
   */
  id?: string;
  /** Higher runs are claimed first. (Default: 0) */
  priority?: number;
};

const optionsSchema = z
  .object({
    store: z
      .union([
        z.string(),
        z.custom<Store>((v) => typeof v === "object" && v !== null && "claimRuns" in v),
      ])
      .optional(),
    workflows: z
      .array(z.custom<Workflow>(isWorkflow, "must be made by defineWorkflow"))
      .default([]),
    maxPayloadBytes: z.number().int().min(1024).default(DEFAULT_MAX_PAYLOAD_BYTES),
    logger: z.custom<Logger>((v) => typeof v === "object" && v !== null).optional(),
  })
  .strict();

const RUN_ID = /^[^\s]{1,200}$/;

/** The entry point: a store plus the workflows this process knows. */
export class Baton {
  private readonly workers = new Set<Worker>();
  /** This process's metrics: every worker of this Baton records into them, `GET /metrics` serves them. */
  readonly metrics: BatonMetrics;

  private constructor(
    readonly store: Store,
    private readonly workflows: ReadonlyMap<string, Workflow>,
    private readonly maxPayloadBytes: number,
    private readonly log: Logger,
    private readonly ownsStore: boolean,
  ) {
    this.metrics = new BatonMetrics({ store });
  }

  /** Opens (and migrates) the store and registers the workflows. */
  // eslint-disable-next-line @typescript-eslint/require-await -- async so that every error is a rejection
  static async open(options: BatonOptions = {}): Promise<Baton> {
    const parsed = optionsSchema.safeParse(options);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ConfigError(
        `Baton.open option ${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}`,
      );
    }
    const { workflows, maxPayloadBytes } = parsed.data;
    const byName = new Map<string, Workflow>();
    for (const workflow of workflows) {
      if (byName.has(workflow.name))
        throw new ConfigError(`two workflows are named "${workflow.name}"; names must be unique`);
      byName.set(workflow.name, workflow);
    }
    const storeOption = parsed.data.store ?? process.env.BATON_STORE ?? DEFAULT_STORE_URL;
    const store = typeof storeOption === "string" ? openStore(storeOption) : storeOption;
    const log = parsed.data.logger ?? createLogger();
    return new Baton(store, byName, maxPayloadBytes, log, typeof storeOption === "string");
  }

  /**
   * Starts a run, durably, and returns its handle at once. Idempotent on `options.id`:
   * a second start with the same id returns the first run (`handle.created` is false).
   * Refuses, before storing anything, an unknown workflow (one neither passed to `open`
   * nor registered by a worker of this store) and input that is not JSON.
   */
  async start<I, O>(
    workflow: Workflow<I, O> | string,
    input: I,
    options: StartOptions = {},
  ): Promise<RunHandle<O>> {
    const name = typeof workflow === "string" ? workflow : workflow.name;
    const known =
      this.workflows.get(name) ?? (await this.store.listWorkflows()).find((w) => w.name === name);
    if (!known) {
      const names = [
        ...new Set([
          ...this.workflows.keys(),
          ...(await this.store.listWorkflows()).map((w) => w.name),
        ]),
      ];
      throw new ValidationError(
        `unknown workflow "${name}"; known here or to this store's workers: ${names.join(", ") || "none"}. ` +
          `Pass it in Baton.open({ workflows }), or start a worker that runs it first`,
      );
    }
    const id = options.id ?? randomUUID();
    if (!RUN_ID.test(id))
      throw new ValidationError(
        `run id ${JSON.stringify(id)} must be 1-200 characters without spaces`,
      );
    const priority = options.priority ?? 0;
    if (!Number.isInteger(priority))
      throw new ValidationError(`priority ${priority} must be an integer`);
    const encoded = encodeJson(input, `input of run ${id}`, this.maxPayloadBytes);
    const { run, created } = await this.store.createRun({
      id,
      workflow: name,
      version: known.version,
      input: encoded,
      priority,
    });
    if (run.workflow !== name) {
      throw new ValidationError(
        `run id "${id}" already belongs to a run of workflow "${run.workflow}", not "${name}"; choose another id`,
      );
    }
    if (created) for (const worker of this.workers) worker.wake();
    return new RunHandle<O>(this.store, id, name, created);
  }

  /** A run with its journal and timeline, or undefined when there is none with this id. */
  async get(id: string): Promise<RunDetails | undefined> {
    const run = await this.store.getRun(id);
    if (!run) return undefined;
    const [journal, events] = await Promise.all([
      this.store.loadJournal(id),
      this.store.listEvents(id),
    ]);
    return { ...toRunSummary(run), steps: journal.map(toStepView), events };
  }

  /** Runs, newest first. */
  async list(filter: RunListFilter = {}): Promise<RunSummary[]> {
    return (await this.store.listRuns(filter)).map(toRunSummary);
  }

  /**
   * Cancels a run that has not ended. A worker executing it sees its lease lost at its
   * next write or heartbeat: its `signal` aborts and it starts no further step. With
   * `compensate`, the run turns `compensating` instead, and a worker undoes its completed
   * steps in reverse order (status `compensated` at the end). A run that has already ended
   * is returned unchanged.
   */
  async cancel(id: string, options: { compensate?: boolean } = {}): Promise<RunSummary> {
    const cancelled = await this.store.cancelRun(id, options);
    if (cancelled) {
      if (options.compensate) for (const worker of this.workers) worker.wake();
      return toRunSummary(cancelled);
    }
    const run = await this.store.getRun(id);
    if (!run) throw new ValidationError(`run ${id} does not exist`);
    return toRunSummary(run);
  }

  /** A worker for this Baton's workflows; call `start()` on it. */
  worker(options: WorkerOptions = {}): Worker {
    if (this.workflows.size === 0) {
      throw new ConfigError("a worker needs workflows: pass them in Baton.open({ workflows })");
    }
    return new Worker(
      {
        store: this.store,
        workflows: this.workflows,
        log: this.log,
        maxPayloadBytes: this.maxPayloadBytes,
        metrics: this.metrics,
        onState: (worker, state: WorkerLifecycleState) => {
          if (state === "running") this.workers.add(worker);
          else this.workers.delete(worker);
        },
      },
      options,
    );
  }

  /** Stops this process's workers gracefully, then closes the store if Baton opened it. */
  async close(): Promise<void> {
    await Promise.all([...this.workers].map((worker) => worker.stop("Baton.close()")));
    if (this.ownsStore) await this.store.close();
  }
}
