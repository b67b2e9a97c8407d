/**
 * Graceful shutdown benchmarks on SQLite, with real worker processes:
 * - handoff latency: from a run's last step boundary on a worker receiving SIGTERM to
 *   that run's next step starting on another worker;
 * - shutdown time: SIGTERM to process exit with many runs in flight, all at or within a
 *   millisecond of a step boundary.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Baton } from "../src/index.js";
import { spawnWorker, type WorkerProcess } from "../src/demo/worker-process.js";
import { tempDir } from "../test/support/temp-dir.js";
import { waitFor } from "../test/support/wait-for.js";
import { summarize } from "./stats.js";
import { loop } from "./workflows.js";

const MODULE = fileURLToPath(new URL("./workflows.ts", import.meta.url));

type Start = { run: string; step: string; pid: number; at: number };

function readStarts(path: string): Start[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [run, step, pid, at] = line.split(" ");
      return { run: run!, step: step!, pid: Number(pid), at: Number(at) };
    });
}

async function setup(name: string) {
  const dir = tempDir(`baton-bench-${name}-`);
  const store = `sqlite:${join(dir.path, "baton.db")}`;
  const log = join(dir.path, "starts.log");
  const baton = await Baton.open({ store, workflows: [loop] });
  const spawned: WorkerProcess[] = [];
  /** Kills whatever worker is still alive (a benchmark that throws must not leave one behind). */
  const killAll = async () => {
    for (const w of spawned)
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
    await Promise.all(spawned.map((w) => w.exited));
  };
  const spawn = (concurrency: number) =>
    spawnWorker({
      store,
      module: MODULE,
      nodeArgs: ["--import", "tsx"],
      concurrency,
      env: { BATON_BENCH_LOG: log },
    }).then((w) => (spawned.push(w), w));
  return { dir, baton, log, spawn, killAll };
}

/** `runs` runs on worker A; SIGTERM A; each run's next step starts on B. */
export async function measureHandoffLatency(runs = 100) {
  const { dir, baton, log, spawn, killAll } = await setup("handoff");
  try {
    const a = await spawn(runs);
    for (let i = 0; i < runs; i++)
      await baton.start(loop, { steps: 1_000, stepMs: 20 }, { id: `h-${i}` });
    await waitFor(() => new Set(readStarts(log).map((s) => s.run)).size === runs, 30_000);
    const b = await spawn(runs);
    a.child.kill("SIGTERM");
    await a.exited;
    await waitFor(
      () =>
        new Set(
          readStarts(log)
            .filter((s) => s.pid === b.pid)
            .map((s) => s.run),
        ).size === runs,
      30_000,
    );
    const latencies: number[] = [];
    for (let i = 0; i < runs; i++) {
      const run = (await baton.get(`h-${i}`))!;
      const lastOnA = Math.max(
        ...run.steps.filter((s) => s.workerId === a.workerId).map((s) => s.updatedAt),
      );
      const firstOnB = readStarts(log).find((s) => s.run === run.id && s.pid === b.pid)!;
      latencies.push(firstOnB.at - lastOnA);
    }
    b.child.kill("SIGTERM");
    await b.exited;
    return summarize(latencies);
  } finally {
    await killAll();
    await baton.close();
    dir.remove();
  }
}

/** SIGTERM to exit of a worker holding `runs` runs of 1 ms steps. */
export async function measureShutdownTime(runs = 1_000) {
  const { dir, baton, log, spawn, killAll } = await setup("shutdown");
  try {
    const a = await spawn(runs);
    for (let i = 0; i < runs; i++)
      await baton.start(loop, { steps: 100_000, stepMs: 1 }, { id: `s-${i}` });
    await waitFor(() => new Set(readStarts(log).map((s) => s.run)).size === runs, 60_000);
    const sentAt = performance.now();
    a.child.kill("SIGTERM");
    const code = await a.exited;
    const tookMs = performance.now() - sentAt;
    const report = JSON.parse((await baton.store.latestShutdownReport(a.workerId))!.report) as {
      runs: { inFlight: number; handedOff: number };
    };
    return { runs, code, tookMs, inFlight: report.runs.inFlight, handedOff: report.runs.handedOff };
  } finally {
    await killAll();
    await baton.close();
    dir.remove();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log("handoff", await measureHandoffLatency());
  console.log("shutdown", await measureShutdownTime());
}
