/**
 * `npm run bench`: Baton's benchmarks, printed as a table and written to
 * bench/results/latest.json. Figures are compared as ratios from one run; see
 * docs/benchmarks.md for recorded results and the machine they came from.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { measureEnqueueLatency } from "./enqueue-latency.js";
import { measureStepOverhead } from "./step-overhead.js";
import { measureHandoffLatency, measureShutdownTime } from "./shutdown.js";
import { measurePostgresEnqueueLatency } from "./postgres/enqueue-latency.js";
import { measurePostgresHandoffLatency } from "./postgres/handoff-latency.js";
import { ms } from "./stats.js";

const results: Record<string, unknown> = {
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  },
  at: new Date().toISOString(),
};

console.log("Durable step overhead (SQLite, WAL), Baton step vs raw better-sqlite3 commit");
for (const level of ["full", "normal"] as const) {
  const r = await measureStepOverhead(level);
  results[`stepOverhead.${level}`] = r;
  const verdict = r.ratio <= 1.3 ? "meets goal <= 1.3x" : "MISSES goal <= 1.3x";
  console.log(
    `  synchronous=${level.padEnd(6)} raw ${ms(r.rawMs)}  baton ${ms(r.batonMs)}  ratio ${r.ratio.toFixed(2)}x  (${verdict})`,
  );
}

console.log("Enqueue-to-start latency, idle worker");
for (const mode of ["in-process", "cross-process"] as const) {
  const r = await measureEnqueueLatency(mode);
  results[`enqueueLatency.${mode}`] = r;
  const verdict = r.p99 <= 20 ? "meets goal p99 <= 20 ms" : "MISSES goal p99 <= 20 ms";
  console.log(
    `  ${mode.padEnd(13)} p50 ${ms(r.p50)}  p99 ${ms(r.p99)}  max ${ms(r.max)}  (n=${r.n}; ${verdict})`,
  );
}

console.log("Graceful shutdown (SQLite, worker processes)");
const handoff = await measureHandoffLatency();
results.handoffLatency = handoff;
console.log(
  `  handoff latency, boundary to next step elsewhere: p50 ${ms(handoff.p50)}  p99 ${ms(handoff.p99)}  (n=${handoff.n}; ${handoff.p99 <= 50 ? "meets" : "MISSES"} goal p99 <= 50 ms)`,
);
const shutdown = await measureShutdownTime();
results.shutdownTime = shutdown;
console.log(
  `  SIGTERM to exit, ${shutdown.runs} runs in flight: ${ms(shutdown.tookMs)}, exit ${shutdown.code}, handed off ${shutdown.handedOff}  (${shutdown.tookMs <= 250 ? "meets" : "MISSES"} goal <= 250 ms)`,
);

console.log("PostgreSQL (BATON_BENCH_PG_URL, else the local server; peers vs DBOS: bench/peers)");
try {
  const enqueue = await measurePostgresEnqueueLatency();
  results.postgresEnqueueLatency = enqueue;
  console.log(
    `  enqueue-to-start with NOTIFY, worker in another process: p50 ${ms(enqueue.p50)}  p99 ${ms(enqueue.p99)}  (${enqueue.p99 <= 20 ? "meets" : "MISSES"} goal p99 <= 20 ms)`,
  );
  const handoffPg = await measurePostgresHandoffLatency(30, 1);
  results.postgresHandoffLatency = handoffPg;
  console.log(
    `  handoff latency, one run in flight: p50 ${ms(handoffPg.p50)}  p99 ${ms(handoffPg.p99)}  (${handoffPg.p99 <= 50 ? "meets" : "MISSES"} goal p99 <= 50 ms)`,
  );
} catch (error) {
  console.log(`  skipped: ${(error as Error).message}`);
}

mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(
  new URL("./results/latest.json", import.meta.url),
  `${JSON.stringify(results, null, 2)}\n`,
);
