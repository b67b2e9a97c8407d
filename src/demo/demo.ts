import { mkdirSync, readFileSync, rmSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Baton } from "../baton.js";
import { siblingModule } from "../internal/module-path.js";
import { TERMINAL_STATUSES } from "../store/store.js";
import { researchAgent, type ExecutionLogLine } from "./agent-workflows.js";
import { analyseDemo, formatDemoReport } from "./demo-report.js";
import { spawnWorker, type WorkerProcess } from "./worker-process.js";

export type DemoOptions = { workers: number; runs: number; dir: string };

const LEASE_MS = 2_000;
const TOPICS = ["fusion", "tides", "bees", "lichens", "comets", "glaciers", "volcanoes", "coral"];

/**
 * `baton demo`: N worker processes on one SQLite file, agent-like runs, a SIGKILL in the
 * middle and a replacement worker; then a report checked against the execution log.
 * Returns false (exit code 1) when a run is lost or a completed step ran again.
 */
export async function runDemo(options: DemoOptions): Promise<boolean> {
  const dir = resolve(options.dir);
  if (existsSync(dir)) rmSync(dir, { recursive: true });
  mkdirSync(dir, { recursive: true });
  const store = `sqlite:${join(dir, "demo.db")}`;
  const logPath = join(dir, "executions.jsonl");
  const module = siblingModule(import.meta.url, "./agent-workflows");
  const env = { BATON_DEMO_LOG: logPath };
  const say = (text: string) => console.log(`[demo] ${text}`);

  const baton = await Baton.open({ store, workflows: [researchAgent] });
  const workers: WorkerProcess[] = [];
  try {
    say(`starting ${options.workers} worker processes on ${store}`);
    const spawn = () =>
      spawnWorker({ store, module, env, concurrency: 8, leaseMs: LEASE_MS, stderr: "inherit" });
    workers.push(...(await Promise.all(Array.from({ length: options.workers }, spawn))));

    say(`submitting ${options.runs} agent runs`);
    for (let i = 0; i < options.runs; i++) {
      await baton.start(
        researchAgent,
        { topic: TOPICS[i % TOPICS.length]! },
        { id: `agent-${String(i).padStart(3, "0")}` },
      );
    }

    const victim = workers[0]!;
    await waitForLongStep(logPath, victim.pid);
    victim.child.kill("SIGKILL");
    const killed = { pid: victim.pid, at: Date.now() };
    say(
      `SIGKILLed worker ${victim.workerId} (pid ${victim.pid}) with runs in flight; starting a replacement`,
    );
    workers.push(await spawn());

    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const counts = await baton.store.countRuns();
      const open = Object.entries(counts)
        .filter(([s]) => !TERMINAL_STATUSES.includes(s as never))
        .reduce((n, [, c]) => n + c, 0);
      if (open === 0) break;
      await sleep(200);
    }

    const runs = await Promise.all(
      (await baton.list({ limit: options.runs + 10 })).map(async (r) => (await baton.get(r.id))!),
    );
    const log = readFileSync(logPath, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ExecutionLogLine);
    const report = analyseDemo(runs, log, killed);
    console.log(formatDemoReport(report, LEASE_MS));
    say(
      `inspect a run with: npx tsx src/cli/main.ts --store ${store} run ${runs[0]?.id ?? "<id>"}`,
    );
    return report.completed === report.runs && report.reexecutedAfterCompletion.length === 0;
  } finally {
    for (const worker of workers)
      if (worker.child.exitCode === null && worker.child.signalCode === null)
        worker.child.kill("SIGTERM");
    await Promise.all(workers.map((w) => w.exited));
    await baton.close();
  }
}

/** Waits until the victim is in the middle of a long step, so the kill lands mid-run. */
async function waitForLongStep(logPath: string, pid: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const text = existsSync(logPath) ? readFileSync(logPath, "utf8") : "";
    const chunks = text
      .split("\n")
      .filter((line) => line.includes(`"pid":${pid},`) && line.includes('"chunk":'));
    if (chunks.length >= 6) return;
    await sleep(20);
  }
}
