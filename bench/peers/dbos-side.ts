/**
 * DBOS Transact (`@dbos-inc/dbos-sdk`) on PostgreSQL, used as its documentation shows:
 * `DBOS.registerWorkflow` around a function whose steps are `DBOS.runStep`, launched with
 * a system database URL. A workflow is called directly, which runs it in this process and
 * resolves once its output is recorded in the system database.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Probe, type System } from "./workload.js";

/**
 * The part of DBOS's API this benchmark uses. The module is imported by a name held in a
 * variable so that the main package's typecheck, which covers bench/, passes on a
 * checkout where bench/peers has not been installed.
 */
type Dbos = {
  setConfig(config: {
    name: string;
    systemDatabaseUrl: string;
    applicationVersion?: string;
    logLevel?: string;
  }): void;
  launch(): Promise<void>;
  shutdown(): Promise<void>;
  registerWorkflow<Args extends unknown[], R>(
    fn: (...args: Args) => Promise<R>,
    config: { name: string },
  ): (...args: Args) => Promise<R>;
  runStep<R>(fn: () => Promise<R>, config: { name: string }): Promise<R>;
  withNextWorkflowID<R>(workflowID: string, fn: () => Promise<R>): Promise<R>;
};

const DBOS_MODULE: string = "@dbos-inc/dbos-sdk";

/** The installed version of DBOS, from its package.json. */
export function dbosVersion(): string {
  const entry = createRequire(import.meta.url).resolve(DBOS_MODULE);
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === DBOS_MODULE) return pkg.version ?? "unknown";
    } catch {
      // not this directory
    }
  }
  return "unknown";
}

export async function openDbos(systemDatabaseUrl: string): Promise<System> {
  const { DBOS } = (await import(DBOS_MODULE)) as { DBOS: Dbos };
  const probe = new Probe();
  const threeSteps = DBOS.registerWorkflow(
    async () => {
      const [one, two, three] = probe.steps();
      const a = await DBOS.runStep(one, { name: "one" });
      const b = await DBOS.runStep(two, { name: "two" });
      const c = await DBOS.runStep(three, { name: "three" });
      return a + b + c;
    },
    { name: "threeSteps" },
  );
  DBOS.setConfig({
    name: "baton-peer-bench",
    systemDatabaseUrl,
    applicationVersion: "1",
    logLevel: "error",
  });
  await DBOS.launch();
  return {
    name: "DBOS",
    probe,
    async run(key) {
      await DBOS.withNextWorkflowID(key, () => threeSteps());
    },
    async close() {
      await DBOS.shutdown();
    },
  };
}
