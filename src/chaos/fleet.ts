/**
 * The worker processes of a chaos run, handled the way the world handles pods: a
 * Deployment keeps `replicas` of them, the kubelet terminates them (preStop hook, SIGTERM,
 * SIGKILL when the grace period ends), the kernel kills them, a hypervisor freezes them.
 * Every termination is recorded with its times, for the checks.
 */
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { spawnWorker, type WorkerProcess } from "../demo/worker-process.js";
import type { ShutdownReport as LifecycleReport } from "../lifecycle/types.js";
import { SqliteStore } from "../store/sqlite/sqlite-store.js";
import type { Store } from "../store/store.js";
import type { TerminationKind, TerminationRecord } from "./evidence.js";

export type FleetOptions = {
  /** Each worker's stderr goes to `<logDir>/worker-<pid>.log`. */
  logDir: string;
  store: string;
  /** The workflows module the workers load. */
  module: string;
  env: Record<string, string>;
  nodeArgs: readonly string[];
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  graceMs: number;
  /**
   * SQLite: never leave a worker frozen inside a commit (continue it and freeze it again a
   * moment later), so that every freeze is a split brain rather than a stalled store.
   */
  stopOutsideCommits: boolean;
};

/**
 * `running`: up and claiming; `stopped`: frozen by SIGSTOP; `terminating`: asked to go,
 * not gone yet; `exited`.
 */
export type FleetWorkerState = "running" | "stopped" | "terminating" | "exited";

export type FleetWorker = {
  workerId: string;
  pid: number;
  httpPort: number;
  process: WorkerProcess;
  state: FleetWorkerState;
  startedAt: number;
  exitAt?: number;
  exitCode?: number | string;
  /** Resolves once the process has exited. */
  gone: Promise<void>;
  /** What its shutdown report (a line on its stderr) says went wrong, once it is written. */
  shutdown: { problems?: string[] };
};

export class Fleet {
  /** Every worker ever started, in order. */
  readonly workers: FleetWorker[] = [];
  readonly terminations: TerminationRecord[] = [];
  /** Replacements a Deployment started after a termination. */
  replacements = 0;
  readonly errors: string[] = [];
  private readonly background = new Set<Promise<unknown>>();

  constructor(private readonly options: FleetOptions) {}

  /** Workers up and claiming, oldest first. */
  up(): FleetWorker[] {
    return this.workers.filter((w) => w.state === "running");
  }

  /** Workers whose process is alive (stopped and terminating ones included). */
  alive(): FleetWorker[] {
    return this.workers.filter((w) => w.state !== "exited");
  }

  count(kind: TerminationKind): number {
    return this.terminations.filter((t) => t.kind === kind).length;
  }

  /** Starts one worker and resolves once it claims work. */
  async start(): Promise<FleetWorker> {
    const o = this.options;
    const process = await spawnWorker({
      store: o.store,
      module: o.module,
      env: o.env,
      nodeArgs: [...o.nodeArgs],
      concurrency: o.concurrency,
      leaseMs: o.leaseMs,
      pollMs: o.pollMs,
      graceMs: o.graceMs,
      stderr: "pipe",
    });
    const shutdown: { problems?: string[] } = {};
    this.readStderr(process, shutdown);
    const worker: FleetWorker = {
      workerId: process.workerId,
      pid: process.pid,
      httpPort: process.httpPort,
      process,
      state: "running",
      startedAt: Date.now(),
      gone: Promise.resolve(),
      shutdown,
    };
    worker.gone = new Promise<void>((resolve) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        worker.exitAt = Date.now();
        worker.exitCode = code ?? signal ?? "unknown";
        worker.state = "exited";
        resolve();
      };
      const child = process.child;
      if (child.exitCode !== null || child.signalCode !== null)
        onExit(child.exitCode, child.signalCode);
      else child.once("exit", onExit);
    });
    this.workers.push(worker);
    return worker;
  }

  /** What a Deployment does when a pod goes away: start another at once (retried on failure). */
  replace(): void {
    this.replacements += 1;
    this.track(
      (async () => {
        for (let attempt = 1; attempt <= 3; attempt++) {
          try {
            await this.start();
            return;
          } catch (error) {
            this.errors.push(`a replacement worker did not start: ${(error as Error).message}`);
            await sleep(500);
          }
        }
      })(),
    );
  }

  /**
   * The kubelet's order: the preStop hook (POST /drain), SIGTERM once it returns, SIGKILL
   * if the process is still alive when the grace period (counted from the hook) ends.
   * Resolves when the process has exited.
   */
  async terminate(worker: FleetWorker, kind: "k8s" | "rolling" | "teardown"): Promise<void> {
    if (worker.state === "stopped") this.signal(worker, "SIGCONT");
    worker.state = "terminating";
    const record: TerminationRecord = {
      kind,
      workerId: worker.workerId,
      pid: worker.pid,
      at: Date.now(),
    };
    this.terminations.push(record);
    const killer = setTimeout(() => {
      if (worker.exitAt !== undefined) return;
      record.killedAtGrace = true;
      this.signal(worker, "SIGKILL");
    }, this.options.graceMs);
    try {
      const res = await fetch(`http://127.0.0.1:${worker.httpPort}/drain`, {
        method: "POST",
        signal: AbortSignal.timeout(2_000),
      });
      await res.arrayBuffer();
      record.drainAckAt = Date.now();
    } catch {
      // The hook failed (the process is busy or gone); the kubelet sends SIGTERM anyway.
    }
    record.sigtermAt = Date.now();
    this.signal(worker, "SIGTERM");
    await worker.gone;
    clearTimeout(killer);
    record.exitAt = worker.exitAt;
    record.exitCode = worker.exitCode;
    // The report line is the last thing the worker writes; let its pipe drain first.
    await sleep(20);
    if (worker.shutdown.problems?.length) record.shutdownProblems = worker.shutdown.problems;
  }

  /** The kernel's OOM killer, a node lost: SIGKILL, no warning. */
  kill(worker: FleetWorker): void {
    worker.state = "terminating";
    this.terminations.push({
      kind: "sigkill",
      workerId: worker.workerId,
      pid: worker.pid,
      at: Date.now(),
    });
    this.signal(worker, "SIGKILL");
    const record = this.terminations.at(-1)!;
    this.track(
      worker.gone.then(() => {
        record.exitAt = worker.exitAt;
        record.exitCode = worker.exitCode;
      }),
    );
  }

  /**
   * A frozen VM, a long GC pause: SIGSTOP (right after a heartbeat), then SIGCONT once another worker has taken over
   * one of its runs (its lease expired) and `afterTakeoverMs` more have passed, so it wakes
   * up into a split brain. Without runs, or when no takeover comes within lease + 1.5 s,
   * it is continued then.
   */
  async freeze(worker: FleetWorker, store: Store, afterTakeoverMs: number): Promise<void> {
    worker.state = "stopped";
    await this.afterHeartbeat(worker, store);
    const record: TerminationRecord = {
      kind: "stop",
      workerId: worker.workerId,
      pid: worker.pid,
      at: Date.now(),
    };
    this.terminations.push(record);
    this.signal(worker, "SIGSTOP");
    // Frozen inside a commit, it would hold SQLite's write lock: nobody could take its runs.
    for (let tries = 0; this.options.stopOutsideCommits && tries < 10; tries++) {
      if (!holdsWriteLock(store)) break;
      this.signal(worker, "SIGCONT");
      await sleep(5 + tries * 5);
      this.signal(worker, "SIGSTOP");
      record.at = Date.now();
    }
    const held = await heldRuns(store, worker.workerId);
    record.runsHeld = held.length;
    const { leaseMs } = this.options;
    // No takeover by then means none can come: on SQLite, a worker frozen inside a commit
    // holds the write lock and every other process waits on it (up to its busy timeout).
    const giveUpAt = record.at + leaseMs + 1_500;
    while (Date.now() < giveUpAt) {
      if (held.length === 0 && Date.now() >= record.at + leaseMs + 300) break;
      const now = await Promise.all(held.slice(0, 16).map((r) => store.getRun(r.id)));
      if (now.some((run, i) => run && run.fence > held[i]!.fence)) {
        record.takeoverSeenAt = Date.now();
        break;
      }
      await sleep(25);
    }
    await sleep(afterTakeoverMs);
    if (worker.state === "stopped") {
      this.signal(worker, "SIGCONT");
      worker.state = "running";
    }
    record.continuedAt = Date.now();
  }

  /**
   * Waits (at most a heartbeat interval) until the worker has just renewed its leases, so
   * that the freeze lands when it trusts its leases longest: the worst case for a split
   * brain, since it then wakes up with step timers due before its next heartbeat.
   */
  private async afterHeartbeat(worker: FleetWorker, store: Store): Promise<void> {
    const probe = (await heldRuns(store, worker.workerId))[0];
    if (!probe) return;
    const until = Date.now() + this.options.leaseMs / 3 + 200;
    while (Date.now() < until) {
      const run = await store.getRun(probe.id);
      if (run?.leaseOwner !== worker.workerId || run.leaseExpiresAt !== probe.leaseExpiresAt)
        return;
      await sleep(5);
    }
  }

  /** Keeps a background action (an exit, a replacement) to wait for before the end. */
  track(promise: Promise<unknown>): void {
    const tracked = promise.catch((error: unknown) => {
      this.errors.push(String(error));
    });
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }

  /** Waits for every background action, up to `timeoutMs`. */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.background.size > 0 && Date.now() < deadline)
      await Promise.race([Promise.allSettled([...this.background]), sleep(100)]);
  }

  /** SIGKILLs whatever is still alive (the last resort of cleanup). */
  async killAll(): Promise<void> {
    for (const worker of this.alive()) {
      this.signal(worker, "SIGCONT");
      this.signal(worker, "SIGKILL");
    }
    await Promise.all(this.workers.map((w) => w.gone));
  }

  /** The same, synchronously, for a process that is about to exit. */
  killAllNow(): void {
    for (const worker of this.alive()) {
      this.signal(worker, "SIGCONT");
      this.signal(worker, "SIGKILL");
    }
  }

  /**
   * Keeps each worker's stderr in its own file (and on this process's stderr with
   * BATON_CHAOS_WORKER_STDERR=1), and reads its shutdown report line: the phases that timed
   * out or failed, which is why a graceful exit was not clean.
   */
  private readStderr(worker: WorkerProcess, shutdown: { problems?: string[] }): void {
    const stderr = worker.child.stderr;
    if (!stderr) return;
    const file = createWriteStream(join(this.options.logDir, `worker-${worker.pid}.log`));
    file.on("error", () => undefined);
    stderr.pipe(file);
    if (globalThis.process.env.BATON_CHAOS_WORKER_STDERR) stderr.pipe(globalThis.process.stderr);
    createInterface({ input: stderr }).on("line", (line) => {
      if (!line.includes('"shutdown report"')) return;
      try {
        const { report } = JSON.parse(line) as { report: LifecycleReport };
        shutdown.problems = [
          ...(report.escalated ? ["escalated"] : []),
          ...(report.watchdog ? ["the watchdog fired"] : []),
          ...report.phases.flatMap((p) => [
            ...(p.timedOut ? [`${p.phase} timed out after ${p.durationMs} ms`] : []),
            ...(p.interrupted ? [`${p.phase} was interrupted`] : []),
            ...p.errors.map((e) => `${p.phase}: ${e}`),
          ]),
        ];
      } catch {
        // not a report after all
      }
    });
  }

  private signal(worker: FleetWorker, signal: NodeJS.Signals): void {
    if (worker.exitAt !== undefined) return;
    try {
      worker.process.child.kill(signal);
    } catch {
      // already gone
    }
  }
}

async function heldRuns(store: Store, workerId: string) {
  const lists = await Promise.all(
    (["running", "compensating"] as const).map((status) =>
      store.listRuns({ status, limit: 100_000 }),
    ),
  );
  return lists
    .flat()
    .filter((run) => run.leaseOwner === workerId)
    .map((run) => ({ id: run.id, fence: run.fence, leaseExpiresAt: run.leaseExpiresAt }));
}

/** SQLite only: is the write lock held by someone (for longer than the store's busy timeout)? */
function holdsWriteLock(store: Store): boolean {
  if (!(store instanceof SqliteStore)) return false;
  try {
    store.db.exec("BEGIN IMMEDIATE");
    store.db.exec("ROLLBACK");
    return false;
  } catch {
    return true;
  }
}
