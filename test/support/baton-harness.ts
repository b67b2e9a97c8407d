import { join } from "node:path";
import { Baton, type BatonOptions } from "../../src/baton.js";
import type { Worker } from "../../src/worker/worker.js";
import type { WorkerOptions } from "../../src/worker/worker-options.js";
import { tempDir } from "./temp-dir.js";

/** A Baton on a fresh SQLite file, with workers that are stopped and a file removed at the end. */
export async function openTestBaton(options: Omit<BatonOptions, "store"> = {}) {
  const dir = tempDir();
  const url = `sqlite:${join(dir.path, "baton.db")}`;
  const baton = await Baton.open({ ...options, store: url });
  const workers: Worker[] = [];
  return {
    baton,
    url,
    dir: dir.path,
    async startWorker(workerOptions: WorkerOptions = {}): Promise<Worker> {
      const worker = baton.worker({
        handleSignals: false,
        leaseMs: 2_000,
        pollMs: 50,
        ...workerOptions,
      });
      workers.push(worker);
      await worker.start();
      return worker;
    },
    async close(): Promise<void> {
      await Promise.all(workers.map((w) => w.stop("test cleanup")));
      await baton.close();
      dir.remove();
    },
  };
}

export type TestBaton = Awaited<ReturnType<typeof openTestBaton>>;
