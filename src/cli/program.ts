import { Command, InvalidArgumentError } from "commander";
import { Baton } from "../baton.js";
import { DEFAULT_STORE_URL } from "../store/open-store.js";
import { RUN_STATUSES, type RunStatus } from "../store/store.js";
import { ValidationError } from "../workflow/errors.js";
import { loadWorkflows } from "./load-workflows.js";
import { formatRunTable, formatRunTimeline } from "./format-run.js";
import { registerDemoCommand } from "../demo/demo-command.js";
import { registerChaosCommand } from "../chaos/chaos-command.js";

const integer = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`${name} must be a whole number, not "${value}"`);
  return n;
};

type GlobalOptions = { store: string };
type WorkerCommandOptions = {
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  graceMs?: number;
  preStopMs?: number;
  http: boolean;
  httpPort: number;
  httpHost: string;
};

/** The `baton` command line. Each command opens the store named by --store or BATON_STORE. */
export function buildProgram(): Command {
  const program = new Command("baton")
    .description("Durable, shutdown-safe workflows for long-running AI agents")
    .option(
      "--store <url>",
      "store URL (env BATON_STORE)",
      process.env.BATON_STORE ?? DEFAULT_STORE_URL,
    )
    .showHelpAfterError();
  const storeOf = (command: Command) => command.optsWithGlobals<GlobalOptions>().store;

  program
    .command("worker")
    .description("run a worker for the workflows exported by a module")
    .argument("<module>", "file that exports workflows made with defineWorkflow")
    .option("--concurrency <n>", "runs executed at once", integer("--concurrency"), 10)
    .option("--lease-ms <ms>", "lease length", integer("--lease-ms"), 10_000)
    .option("--poll-ms <ms>", "longest wait between looks for work", integer("--poll-ms"), 1_000)
    .option(
      "--grace-ms <ms>",
      "SIGTERM-to-SIGKILL budget (env BATON_GRACE_MS, else 30000)",
      integer("--grace-ms"),
    )
    .option(
      "--pre-stop-ms <ms>",
      "wait after readiness goes false, for load balancers",
      integer("--pre-stop-ms"),
    )
    .option(
      "--http-port <port>",
      "management server port (0: any free port)",
      integer("--http-port"),
      9464,
    )
    .option(
      "--http-host <host>",
      "management server address; off loopback it needs BATON_ADMIN_TOKEN",
      "127.0.0.1",
    )
    .option("--no-http", "do not serve /healthz, /readyz and POST /drain")
    .action(async (modulePath: string, options: WorkerCommandOptions, command: Command) => {
      const workflows = await loadWorkflows(modulePath);
      const baton = await Baton.open({ store: storeOf(command), workflows });
      const worker = baton.worker({
        concurrency: options.concurrency,
        leaseMs: options.leaseMs,
        pollMs: options.pollMs,
        ...(options.graceMs === undefined ? {} : { graceMs: options.graceMs }),
        ...(options.preStopMs === undefined ? {} : { preStopDelayMs: options.preStopMs }),
        http: options.http ? { port: options.httpPort, host: options.httpHost } : false,
      });
      await worker.start();
      // Closed before the management server (closeables close in reverse order).
      worker.lifecycle.addCloseable({ name: "store", close: () => baton.store.close() });
      console.log(
        JSON.stringify({
          event: "worker-started",
          workerId: worker.id,
          pid: process.pid,
          httpPort: worker.httpPort ?? null,
          workflows: workflows.map((w) => w.name),
        }),
      );
    });

  program
    .command("start")
    .description("start a run of a workflow")
    .argument("<workflow>", "workflow name")
    .option("--input <json>", "the run's input as JSON", "null")
    .option("--id <id>", "run id; starting again with the same id returns the same run")
    .option("--priority <n>", "higher runs are claimed first", integer("--priority"), 0)
    .option("--module <file>", "workflows module, for a workflow no worker has registered yet")
    .action(
      async (
        name: string,
        options: { input: string; id?: string; priority: number; module?: string },
        command: Command,
      ) => {
        let input: unknown;
        try {
          input = JSON.parse(options.input);
        } catch (error) {
          throw new ValidationError(
            `--input is not valid JSON (${(error as Error).message}): ${options.input}`,
          );
        }
        const workflows = options.module ? await loadWorkflows(options.module) : [];
        const baton = await Baton.open({ store: storeOf(command), workflows });
        try {
          const run = await baton.start(name, input, {
            ...(options.id ? { id: options.id } : {}),
            priority: options.priority,
          });
          console.log(JSON.stringify({ id: run.id, workflow: run.workflow, created: run.created }));
        } finally {
          await baton.close();
        }
      },
    );

  program
    .command("runs")
    .description("list runs, newest first")
    .option("--status <status>", `one of ${RUN_STATUSES.join(", ")}`)
    .option("--workflow <name>", "only runs of this workflow")
    .option("--limit <n>", "at most this many", integer("--limit"), 50)
    .option("--json", "print JSON")
    .action(
      async (
        options: { status?: string; workflow?: string; limit: number; json?: boolean },
        command: Command,
      ) => {
        if (options.status && !RUN_STATUSES.includes(options.status as RunStatus)) {
          throw new ValidationError(
            `--status "${options.status}" is not a run status; use one of ${RUN_STATUSES.join(", ")}`,
          );
        }
        const baton = await Baton.open({ store: storeOf(command) });
        try {
          const runs = await baton.list({
            ...(options.status ? { status: options.status as RunStatus } : {}),
            ...(options.workflow ? { workflow: options.workflow } : {}),
            limit: options.limit,
          });
          console.log(options.json ? JSON.stringify(runs, null, 2) : formatRunTable(runs));
        } finally {
          await baton.close();
        }
      },
    );

  program
    .command("run")
    .description("show a run: its journal and events as a timeline")
    .argument("<id>", "run id")
    .option("--json", "print JSON")
    .action(async (id: string, options: { json?: boolean }, command: Command) => {
      const baton = await Baton.open({ store: storeOf(command) });
      try {
        const run = await baton.get(id);
        if (!run) throw new ValidationError(`run ${id} does not exist in ${storeOf(command)}`);
        console.log(options.json ? JSON.stringify(run, null, 2) : formatRunTimeline(run));
      } finally {
        await baton.close();
      }
    });

  program
    .command("cancel")
    .description("cancel a run that has not ended")
    .argument("<id>", "run id")
    .option("--compensate", "undo its completed steps (their compensations, in reverse order)")
    .action(async (id: string, options: { compensate?: boolean }, command: Command) => {
      const baton = await Baton.open({ store: storeOf(command) });
      try {
        const run = await baton.cancel(id, { compensate: options.compensate === true });
        console.log(JSON.stringify({ id: run.id, status: run.status }));
      } finally {
        await baton.close();
      }
    });

  registerDemoCommand(program);
  registerChaosCommand(program, storeOf);

  return program;
}
