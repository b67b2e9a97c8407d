import { onTestFinished } from "vitest";
import { Baton, type BatonOptions } from "../../src/index.js";
import type { Backend } from "./backends.js";
import { tempDir } from "./temp-dir.js";
import { workerProcesses } from "./worker-processes.js";

/**
 * What a process-level test starts from: a fresh store on `backend`, a Baton on it, and
 * real worker processes running the fixture workflows. Call it inside a test; when the
 * test finishes, pass or fail, the workers are killed, the Baton closed, and the store and
 * files removed.
 */
export async function processFixture(backend: Backend, workflows: BatonOptions["workflows"]) {
  const dir = tempDir();
  const store = await backend.newStoreUrl();
  const baton = await Baton.open({ store, workflows });
  const workers = workerProcesses(store, dir.path);
  onTestFinished(async () => {
    await workers.killAll();
    await baton.close();
    await backend.cleanup();
    dir.remove();
  });
  return { dir, store, baton, workers };
}
