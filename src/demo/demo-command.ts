import { type Command, InvalidArgumentError, Option } from "commander";
import { parseDuration } from "../chaos/chaos-options.js";
import { DEMO_DEFAULTS, runDemo } from "./demo.js";

type DemoCommandOptions = {
  workers: number;
  runs: number;
  duration: number;
  seed: number;
  dir: string;
};

const whole = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`${name} must be a whole number, not "${value}"`);
  return n;
};

/**
 * Adds `baton demo`: a short chaos run on an embedded SQLite file under `--dir`, whatever
 * the global `--store` says (the demo needs nothing else). Exits with code 1 on any violation.
 */
export function registerDemoCommand(program: Command): Command {
  const d = DEMO_DEFAULTS;
  return program
    .command("demo")
    .description(
      "a short game day on the embedded store: agent runs move money while workers are drained, SIGKILLed and frozen; then every guarantee is checked",
    )
    .option("--workers <n>", "worker processes kept up", whole("--workers"), d.workers)
    .option("--runs <n>", "agent runs to submit", whole("--runs"), d.runs)
    .addOption(
      new Option("--duration <d>", "how long to terminate workers: 15s, 1m, 1500ms")
        .argParser((value: string) => {
          try {
            return parseDuration(value);
          } catch (error) {
            throw new InvalidArgumentError((error as Error).message);
          }
        })
        .default(d.durationMs, `${d.durationMs / 1000}s`),
    )
    .option("--seed <n>", "the kill schedule and the inputs", whole("--seed"), d.seed)
    .option("--dir <path>", "where the demo's store (demo.db) is kept", d.dir)
    .action(async (options: DemoCommandOptions) => {
      // Exit through process.exit, so the harness's exit hook takes its workers and ledger along.
      const interrupt = (signal: NodeJS.Signals) => process.exit(signal === "SIGINT" ? 130 : 143);
      process.once("SIGINT", interrupt);
      process.once("SIGTERM", interrupt);
      try {
        const ok = await runDemo({
          workers: options.workers,
          runs: options.runs,
          durationMs: options.duration,
          seed: options.seed,
          dir: options.dir,
        });
        process.exitCode = ok ? 0 : 1;
      } finally {
        process.off("SIGINT", interrupt);
        process.off("SIGTERM", interrupt);
      }
    });
}
