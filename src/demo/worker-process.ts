import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { siblingModule } from "../internal/module-path.js";

export type WorkerProcess = {
  child: ChildProcess;
  pid: number;
  workerId: string;
  /** The management server's port (each spawned worker gets a free one). */
  httpPort: number;
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  exited: Promise<number | string>;
};

export type SpawnWorkerOptions = {
  store: string;
  module: string;
  concurrency?: number;
  leaseMs?: number;
  pollMs?: number;
  graceMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Node's flags for the child. (Default: this process's, so tsx carries over) */
  nodeArgs?: string[];
  /** Where the worker's stderr goes. (Default: ignored) */
  stderr?: "inherit" | "ignore" | "pipe";
};

/**
 * Starts `baton worker <module>` as a child process with this process's Node flags (so
 * it runs from source under tsx as from the build), and resolves once it has started.
 */
export function spawnWorker(options: SpawnWorkerOptions): Promise<WorkerProcess> {
  const cli = siblingModule(import.meta.url, "../cli/main");
  const args = [
    ...(options.nodeArgs ?? process.execArgv),
    cli,
    "--store",
    options.store,
    "worker",
    options.module,
  ];
  if (options.concurrency !== undefined) args.push("--concurrency", String(options.concurrency));
  if (options.leaseMs !== undefined) args.push("--lease-ms", String(options.leaseMs));
  if (options.pollMs !== undefined) args.push("--poll-ms", String(options.pollMs));
  if (options.graceMs !== undefined) args.push("--grace-ms", String(options.graceMs));
  args.push("--http-port", "0");
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", options.stderr ?? "ignore"],
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const onExit = (code: number | string) =>
      reject(new Error(`worker exited (${code}) before it started`));
    void exited.then(onExit);
    lines.on("line", (line) => {
      try {
        const event = JSON.parse(line) as { event?: string; workerId?: string; httpPort?: number };
        if (event.event === "worker-started" && event.workerId) {
          resolve({
            child,
            pid: child.pid!,
            workerId: event.workerId,
            httpPort: event.httpPort ?? 0,
            exited,
          });
        }
      } catch {
        // not one of ours
      }
    });
  });
}
