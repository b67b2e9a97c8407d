import { type Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_STORE_URL } from "../store/open-store.js";
import { parseDuration, parseKillWeights } from "./chaos-options.js";
import { formatProgress, type ChaosProgress } from "./progress.js";
import { formatReport } from "./report.js";
import { runChaos } from "./run-chaos.js";

type ChaosCommandOptions = {
  workers: number;
  runs: number;
  duration: number;
  kill: ReturnType<typeof parseKillWeights>;
  grace: number;
  seed?: number;
  lease: number;
  concurrency: number;
  rolling: number;
  killEvery?: number;
  dir?: string;
  keep?: boolean;
  json?: boolean;
};

const whole = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`${name} must be a whole number, not "${value}"`);
  return n;
};

const wrap =
  <T>(parse: (value: string) => T) =>
  (value: string): T => {
    try {
      return parse(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };

/**
 * Adds `baton chaos` to a program whose global `--store` is read by `storeOf`. The
 * default store (`sqlite:baton.db`) is replaced by a fresh temporary SQLite file, so a
 * chaos run never touches the user's database. Exits with code 1 on any violation.
 */
export function registerChaosCommand(program: Command, storeOf: (c: Command) => string): Command {
  return program
    .command("chaos")
    .description(
      "game day: kill workers (k8s-style, SIGKILL, SIGSTOP, rolling restart) while agent runs move money, then check every invariant",
    )
    .option(
      "--workers <n>",
      "worker processes kept up, as a Deployment's replicas",
      whole("--workers"),
      4,
    )
    .option("--runs <n>", "agent runs to submit", whole("--runs"), 300)
    .addOption(
      new Option("--duration <d>", "how long to terminate workers: 120s, 2m, 1500ms")
        .argParser(wrap(parseDuration))
        .default(30_000, "30s"),
    )
    .addOption(
      new Option("--kill <weights>", "weights of the kinds of termination, e.g. k8s:2,sigkill:1")
        .argParser(wrap(parseKillWeights))
        .default({ k8s: 1, sigkill: 1, stop: 1 }, "k8s:1,sigkill:1,stop:1"),
    )
    .option(
      "--grace <ms>",
      "grace period: the workers' budget, SIGKILL after it",
      whole("--grace"),
      10_000,
    )
    .option("--seed <n>", "makes the kill schedule and the inputs reproducible", whole("--seed"))
    .option("--lease <ms>", "the workers' lease", whole("--lease"), 2_000)
    .option("--concurrency <n>", "runs per worker at once", whole("--concurrency"), 32)
    .option(
      "--kill-every <d>",
      "mean time between terminations (default: duration / 30, within 1.5 to 5 s)",
      wrap(parseDuration),
    )
    .option("--rolling <n>", "rolling restarts of every worker", whole("--rolling"), 1)
    .option("--dir <path>", "where to put the run's store (SQLite) and logs (default: a temp dir)")
    .option("--keep", "keep the store, its schema, the logs and the evidence afterwards")
    .option("--json", "print the report as JSON")
    .action(async (options: ChaosCommandOptions, command: Command) => {
      const store = storeOf(command);
      const live = process.stderr.isTTY;
      let lastLine = 0;
      const onProgress = (p: ChaosProgress) => {
        if (live) process.stderr.write(`\r${formatProgress(p)}\u001b[K`);
        else if (Date.now() - lastLine >= 5_000) {
          lastLine = Date.now();
          process.stderr.write(`${formatProgress(p)}\n`);
        }
      };
      // Exit through process.exit, so the harness's exit hook takes its workers and ledger along.
      const interrupt = (signal: NodeJS.Signals) => process.exit(signal === "SIGINT" ? 130 : 143);
      process.once("SIGINT", interrupt);
      process.once("SIGTERM", interrupt);
      const report = await runChaos({
        ...(store === DEFAULT_STORE_URL ? {} : { store }),
        workers: options.workers,
        runs: options.runs,
        durationMs: options.duration,
        kill: options.kill,
        graceMs: options.grace,
        ...(options.seed === undefined ? {} : { seed: options.seed }),
        leaseMs: options.lease,
        concurrency: options.concurrency,
        rollingRestarts: options.rolling,
        ...(options.killEvery === undefined ? {} : { killIntervalMs: options.killEvery }),
        ...(options.dir ? { dir: options.dir } : {}),
        keep: options.keep === true,
        onProgress,
      });
      process.off("SIGINT", interrupt);
      process.off("SIGTERM", interrupt);
      if (live) process.stderr.write("\r\u001b[K");
      console.log(options.json ? JSON.stringify(report, null, 2) : formatReport(report));
      process.exitCode = report.ok ? 0 : 1;
    });
}
