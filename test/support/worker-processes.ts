import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  spawnWorker,
  type SpawnWorkerOptions,
  type WorkerProcess,
} from "../../src/demo/worker-process.js";

export const FIXTURE_WORKFLOWS = fileURLToPath(
  new URL("../fixtures/workflows.ts", import.meta.url),
);

/**
 * Real `baton worker` processes for a test, running the fixture workflows from source;
 * `killAll` SIGKILLs whatever is still alive at the end.
 */
export function workerProcesses(store: string, dir: string) {
  const started: WorkerProcess[] = [];
  const logPath = join(dir, "exec.jsonl");
  return {
    logPath,
    async start(options: Partial<SpawnWorkerOptions> = {}): Promise<WorkerProcess> {
      const worker = await spawnWorker({
        store,
        module: FIXTURE_WORKFLOWS,
        nodeArgs: ["--import", "tsx"],
        leaseMs: 1_000,
        pollMs: 50,
        stderr: process.env.BATON_TEST_WORKER_STDERR ? "inherit" : "ignore",
        ...options,
        env: { BATON_TEST_LOG: logPath, ...options.env },
      });
      started.push(worker);
      return worker;
    },
    async killAll(): Promise<void> {
      for (const w of started)
        if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
      await Promise.all(started.map((w) => w.exited));
    },
  };
}
