/**
 * Enqueue-to-start latency on PostgreSQL with an idle worker in another process: from
 * `baton.start()` being called to the first step's function starting in the worker. The
 * worker learns of the run from the NOTIFY that `createRun` sends on commit (its poll, the
 * backstop, is left at the default 1 s, so a lost notification would show). Beside it,
 * for scale, the time of one plain durable commit (a one-row INSERT in its own transaction)
 * on the same server, taken between the samples.
 *
 *   npx tsx bench/postgres/enqueue-latency.ts
 */
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { Baton } from "../../src/index.js";
import { spawnWorker } from "../../src/demo/worker-process.js";
import { ping } from "../enqueue-latency.js";
import { ms, summarize } from "../stats.js";
import { isMain, withBenchSchema } from "./bench-postgres.js";

const PING_MODULE = fileURLToPath(new URL("../enqueue-latency.ts", import.meta.url));

export async function measurePostgresEnqueueLatency(samples = 200) {
  return withBenchSchema(async ({ url, version }) => {
    const baton = await Baton.open({ store: url, workflows: [ping] });
    const child = await spawnWorker({
      store: url,
      module: PING_MODULE,
      nodeArgs: ["--import", "tsx"],
    });
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    const latencies: number[] = [];
    const commits: number[] = [];
    try {
      const table = `"${new URL(url).searchParams.get("schema")}".bench_commit`;
      await raw.query(`CREATE TABLE ${table} (id int PRIMARY KEY, at bigint)`);
      for (let i = 0; i < samples; i++) {
        await sleep(5 + (i % 7)); // idle between starts, at varied phases of any poll
        const enqueuedAt = performance.timeOrigin + performance.now();
        const run = await baton.start(ping, null, { id: `ping-${i}` });
        const startedAt = await run.result({ timeoutMs: 10_000 });
        latencies.push(startedAt - enqueuedAt);

        await sleep(5 + (i % 7));
        const t0 = performance.now();
        await raw.query(`INSERT INTO ${table} VALUES ($1, $2)`, [i, Date.now()]);
        commits.push(performance.now() - t0);
      }
    } finally {
      await raw.end();
      child.child.kill("SIGTERM");
      await child.exited;
      await baton.close();
    }
    return { postgres: version, ...summarize(latencies), commit: summarize(commits) };
  });
}

if (isMain(import.meta.url)) {
  const r = await measurePostgresEnqueueLatency();
  const verdict = r.p99 <= 20 ? "meets goal p99 <= 20 ms" : "MISSES goal p99 <= 20 ms";
  console.log(
    `Enqueue-to-start latency, PostgreSQL ${r.postgres}, idle worker in another process (NOTIFY)`,
  );
  console.log(`  p50 ${ms(r.p50)}  p99 ${ms(r.p99)}  max ${ms(r.max)}  (n=${r.n}; ${verdict})`);
  console.log(
    `  for scale, one plain durable commit: p50 ${ms(r.commit.p50)}  p99 ${ms(r.commit.p99)}`,
  );
}
