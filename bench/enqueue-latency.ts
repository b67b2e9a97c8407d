/**
 * Enqueue-to-start latency with an idle worker: from `baton.start()` being called to the
 * first step's function starting. In-process, the start wakes the local worker; across
 * processes, the worker notices the commit through SQLite's data_version.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Baton, defineWorkflow } from "../src/index.js";
import { spawnWorker } from "../src/demo/worker-process.js";
import { tempDir } from "../test/support/temp-dir.js";
import { summarize } from "./stats.js";

/** Appends `runId startedAtEpochMs` (sub-millisecond) when its step starts. */
export const ping = defineWorkflow({ name: "bench-ping" }, async (ctx) =>
  ctx.step("ping", (s) => {
    const at = performance.timeOrigin + performance.now();
    const log = process.env.BATON_BENCH_LOG;
    if (log) appendFileSync(log, `${s.runId} ${at}\n`);
    return at;
  }),
);

export async function measureEnqueueLatency(mode: "in-process" | "cross-process", samples = 200) {
  const dir = tempDir("baton-bench-");
  const store = `sqlite:${join(dir.path, "baton.db")}`;
  const logPath = join(dir.path, "ping.log");
  const baton = await Baton.open({ store, workflows: [ping] });
  const child =
    mode === "cross-process"
      ? await spawnWorker({
          store,
          module: fileURLToPath(import.meta.url),
          nodeArgs: ["--import", "tsx"],
          env: { BATON_BENCH_LOG: logPath },
        })
      : undefined;
  const worker = mode === "in-process" ? baton.worker({ handleSignals: false }) : undefined;
  await worker?.start();
  const latencies: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      await sleep(5 + (i % 7)); // idle between starts, at varied phases of any poll
      const enqueuedAt = performance.timeOrigin + performance.now();
      const run = await baton.start(ping, null, { id: `ping-${i}` });
      const startedAt = await run.result();
      latencies.push(startedAt - enqueuedAt);
    }
  } finally {
    await worker?.stop();
    if (child) {
      child.child.kill("SIGTERM");
      await child.exited;
    }
    await baton.close();
    dir.remove();
  }
  return { mode, ...summarize(latencies) };
}
