/**
 * Graceful handoff latency on PostgreSQL: a worker process gets SIGTERM while it runs a
 * batch of runs; each run is handed off at its next step boundary and resumed by another
 * worker process that is up and idle. Measured per run, from the end of its last step on
 * the stopping worker (the step function returning) to the start of its next step on the
 * other worker: the step's commit, the release, NOTIFY, the claim and the replay of the
 * journal are all inside. Each round's resuming worker is the next round's stopping one.
 *
 *   npx tsx bench/postgres/handoff-latency.ts
 *
 * Each figure is also split by the run's events: the step's end to the release statement,
 * the release to the claim statement, the claim to the workflow function being called on
 * the other worker (journal read included), and the replay to the next step's start.
 */
import { appendFileSync, closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { Baton, defineWorkflow } from "../../src/index.js";
import { spawnWorker, type WorkerProcess } from "../../src/demo/worker-process.js";
import { tempDir } from "../../test/support/temp-dir.js";
import { ms, summarize } from "../stats.js";
import { isMain, withBenchSchema } from "./bench-postgres.js";

const epochNow = () => performance.timeOrigin + performance.now();

/** `steps` steps of `stepMs`; each logs `runId seq pid start|end epochMs` to BATON_BENCH_LOG. */
export const relay = defineWorkflow(
  { name: "bench-relay" },
  async (ctx, input: { steps: number; stepMs: number }) => {
    const log = process.env.BATON_BENCH_LOG;
    // The workflow function is called: the journal is read and the replay begins.
    if (log) appendFileSync(log, `${ctx.runId} -1 ${process.pid} begin ${epochNow()}\n`);
    for (let i = 0; i < input.steps; i++) {
      await ctx.step(`step-${i}`, async (s) => {
        if (log) appendFileSync(log, `${s.runId} ${i} ${process.pid} start ${epochNow()}\n`);
        await sleep(input.stepMs);
        if (log) appendFileSync(log, `${s.runId} ${i} ${process.pid} end ${epochNow()}\n`);
        return i;
      });
    }
    return input.steps;
  },
);

type LogLine = { run: string; seq: number; pid: number; what: string; at: number };

/**
 * The log so far, read incrementally: the benchmark polls it every 10 ms while the workers
 * run, and re-reading a growing file each time would take CPU from them.
 */
class LogReader {
  private offset = 0;
  private partial = "";
  readonly lines: LogLine[] = [];

  constructor(private readonly path: string) {}

  read(): LogLine[] {
    if (!existsSync(this.path)) return this.lines;
    const size = statSync(this.path).size;
    if (size <= this.offset) return this.lines;
    const buffer = Buffer.alloc(size - this.offset);
    const fd = openSync(this.path, "r");
    try {
      readSync(fd, buffer, 0, buffer.length, this.offset);
    } finally {
      closeSync(fd);
    }
    this.offset = size;
    const text = this.partial + buffer.toString("utf8");
    const end = text.lastIndexOf("\n");
    this.partial = text.slice(end + 1);
    for (const line of text.slice(0, end + 1).split("\n")) {
      if (!line) continue;
      const [run, seq, pid, what, at] = line.split(" ");
      this.lines.push({
        run: run!,
        seq: Number(seq),
        pid: Number(pid),
        what: what!,
        at: Number(at),
      });
    }
    return this.lines;
  }
}

/** Polls `check` every 10 ms; throws after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`handoff bench: timed out waiting for ${what}`);
    await sleep(10);
  }
}

export async function measurePostgresHandoffLatency(rounds = 10, runsPerRound = 20) {
  const dir = tempDir("baton-bench-");
  const logPath = join(dir.path, "relay.log");
  try {
    return await withBenchSchema(async ({ url, version }) => {
      const baton = await Baton.open({ store: url, workflows: [relay] });
      const spawn = () =>
        spawnWorker({
          store: url,
          module: fileURLToPath(import.meta.url),
          nodeArgs: ["--import", "tsx"],
          concurrency: runsPerRound * 3,
          env: { BATON_BENCH_LOG: logPath },
        });
      const latencies: number[] = [];
      // The parts of each latency, from the run's events (times on the database's clock,
      // which on this machine is the benchmark's): the step's end to the release statement,
      // the release to the claim statement, the claim to the next step's start.
      const parts = {
        release: [] as number[],
        toClaim: [] as number[],
        toBegin: [] as number[],
        replay: [] as number[],
      };
      const schema = new URL(url).searchParams.get("schema")!;
      const events = new pg.Client({ connectionString: url });
      await events.connect();
      let repeatedSteps = 0;
      const exitCodes: Array<number | string> = [];
      const alive = new Set<WorkerProcess>();
      const logReader = new LogReader(logPath);
      const readLog = () => logReader.read();
      try {
        let holder = await spawn();
        alive.add(holder);
        for (let round = 0; round < rounds; round++) {
          const ids = Array.from({ length: runsPerRound }, (_, k) => `r${round}-${k}`);
          for (const id of ids) await baton.start(relay, { steps: 200, stepMs: 50 }, { id });
          // The holder is the only worker: it claims them all. Then the next one comes up
          // idle (every run is leased) and waits for work.
          const onHolder = async () => {
            const running = await baton.list({ status: "running", limit: 1000 });
            const mine = new Set(
              running.filter((r) => r.leaseOwner === holder.workerId).map((r) => r.id),
            );
            return ids.every((id) => mine.has(id));
          };
          await until("the runs to start on the first worker", onHolder);
          const next = await spawn();
          alive.add(next);
          if (!(await onHolder())) throw new Error("handoff bench: a run left the first worker");

          holder.child.kill("SIGTERM");
          exitCodes.push(await holder.exited);
          alive.delete(holder);
          const stopped = holder.pid;
          await until("every run to resume on the other worker", () => {
            const resumed = new Set(
              readLog()
                .filter((l) => l.pid === next.pid && l.what === "start")
                .map((l) => l.run),
            );
            return ids.every((id) => resumed.has(id));
          });
          const log = readLog();
          for (const id of ids) {
            const ofRun = log.filter((l) => l.run === id);
            const lastEnd = ofRun.filter((l) => l.pid === stopped && l.what === "end").at(-1)!;
            const firstStart = ofRun.find((l) => l.pid === next.pid && l.what === "start")!;
            latencies.push(firstStart.at - lastEnd.at);
            if (firstStart.seq !== lastEnd.seq + 1) repeatedSteps++;
          }
          const { rows } = await events.query<{ run_id: string; kind: string; at: string }>(
            `SELECT run_id, kind, at::text FROM "${schema}".events
             WHERE run_id = ANY ($1) AND kind IN ('handoff', 'claimed', 'takeover') ORDER BY id`,
            [ids],
          );
          for (const id of ids) {
            const ofRun = rows.filter((r) => r.run_id === id);
            const handoff = ofRun.findLast((r) => r.kind === "handoff");
            const claim = ofRun.at(-1);
            const lastEnd = log
              .filter((l) => l.run === id && l.pid === stopped && l.what === "end")
              .at(-1)!;
            const mine = log.filter((l) => l.run === id && l.pid === next.pid);
            const begin = mine.find((l) => l.what === "begin");
            const firstStart = mine.find((l) => l.what === "start");
            if (!handoff || !claim || claim.kind === "handoff" || !begin || !firstStart) continue;
            parts.release.push(Number(handoff.at) - lastEnd.at);
            parts.toClaim.push(Number(claim.at) - Number(handoff.at));
            parts.toBegin.push(begin.at - Number(claim.at));
            parts.replay.push(firstStart.at - begin.at);
          }
          // Leave the new holder idle for the next round.
          for (const id of ids) await baton.cancel(id);
          holder = next;
        }
      } finally {
        for (const worker of alive) {
          worker.child.kill("SIGTERM");
          await worker.exited;
        }
        await baton.close();
        await events.end();
      }
      return {
        postgres: version,
        runsPerRound,
        rounds,
        repeatedSteps,
        exitCodes: [...new Set(exitCodes)],
        ...summarize(latencies),
        parts: {
          release: summarize(parts.release),
          toClaim: summarize(parts.toClaim),
          toBegin: summarize(parts.toBegin),
          replay: summarize(parts.replay),
        },
      };
    });
  } finally {
    dir.remove();
  }
}

if (isMain(import.meta.url)) {
  console.log(
    "Graceful handoff latency (step boundary on a stopping worker -> next step elsewhere)",
  );
  // BATON_BENCH_HANDOFF_RUNS=20 measures only the burst of 20.
  const only = process.env.BATON_BENCH_HANDOFF_RUNS;
  for (const [rounds, runs] of [
    [30, 1],
    [10, 20],
  ] as const) {
    if (only !== undefined && Number(only) !== runs) continue;
    const r = await measurePostgresHandoffLatency(rounds, runs);
    const verdict = r.p99 <= 50 ? "meets goal p99 <= 50 ms" : "MISSES goal p99 <= 50 ms";
    console.log(
      `  ${String(runs).padStart(2)} run(s) in flight at SIGTERM: p50 ${ms(r.p50)}  p99 ${ms(r.p99)}  max ${ms(r.max)}  (n=${r.n}; ${verdict}; steps run twice: ${r.repeatedSteps}; exit codes ${r.exitCodes.join(",")}; PostgreSQL ${r.postgres})`,
    );
    const part = (s: { p50: number; p99: number }) => `p50 ${ms(s.p50)} p99 ${ms(s.p99)}`;
    console.log(
      `     step end -> release ${part(r.parts.release)}; release -> claim ${part(r.parts.toClaim)}; claim -> workflow called ${part(r.parts.toBegin)}; replay -> next step ${part(r.parts.replay)}`,
    );
  }
}
