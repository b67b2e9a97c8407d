/**
 * Baton vs DBOS Transact on the same PostgreSQL, in one run: a three-step workflow, per-step
 * overhead (the gap between one step returning and the next starting) and workflows/s at
 * concurrency 1 and 32 (closed loop). Each system gets its own database, created here and
 * dropped at the end. The passes alternate between the systems so that drift in a noisy
 * machine hits both alike.
 *
 *   npm install && npm --prefix bench/peers install && npm --prefix bench/peers run bench
 *
 * Env: BATON_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test; a role that
 * may create databases), BATON_BENCH_ROUNDS (default 3).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import pg from "pg";
import { openBaton } from "./baton-side.js";
import { dbosVersion, openDbos } from "./dbos-side.js";
import { closedLoop, summarisePasses, type Pass, type System } from "./workload.js";

const BASE_URL = process.env.BATON_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const ROUNDS = Number(process.env.BATON_BENCH_ROUNDS ?? 3);
const CONCURRENCIES = [1, 32] as const;
/** Workflows per pass, by concurrency. */
const WORKFLOWS: Record<number, number> = { 1: 300, 32: 1_500 };
const DATABASES = { baton: "baton_peer_bench_baton", dbos: "baton_peer_bench_dbos" };

const databaseUrl = (name: string) => {
  const url = new URL(BASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
};

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: BASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function recreateDatabases(): Promise<string> {
  return admin(async (client) => {
    for (const name of Object.values(DATABASES)) {
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.query(`CREATE DATABASE "${name}"`);
    }
    const { rows } = await client.query<{ server_version: string }>("SHOW server_version");
    return rows[0]?.server_version ?? "unknown";
  });
}

async function dropDatabases(): Promise<void> {
  await admin(async (client) => {
    for (const name of Object.values(DATABASES))
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });
}

const f2 = (n: number) => n.toFixed(2);

/**
 * Transactions committed so far in each system's database (every statement outside an
 * explicit transaction is one), from `pg_stat_database`. Postgres publishes a backend's
 * counts when it goes idle, at most once a second, hence the pause before reading.
 */
async function commitsByDatabase(): Promise<Record<string, number>> {
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  return admin(async (client) => {
    const { rows } = await client.query<{ datname: string; n: string }>(
      "SELECT datname, xact_commit::text AS n FROM pg_stat_database WHERE datname = ANY($1)",
      [Object.values(DATABASES)],
    );
    return Object.fromEntries(rows.map((r) => [r.datname, Number(r.n)]));
  });
}

async function main() {
  const postgresVersion = await recreateDatabases();
  const systems: System[] = [];
  try {
    systems.push(await openBaton(databaseUrl(DATABASES.baton), Math.max(...CONCURRENCIES)));
    systems.push(await openDbos(databaseUrl(DATABASES.dbos)));

    // Warm up each system (connections, JIT, caches) at both concurrencies.
    for (const system of systems)
      for (const c of CONCURRENCIES) await closedLoop(system, c, 100, `warm-${c}`);

    const passes = new Map<string, Pass[]>();
    const commitsBefore = await commitsByDatabase();
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of CONCURRENCIES) {
        const order = round % 2 === 0 ? systems : [...systems].reverse();
        for (const system of order) {
          const pass = await closedLoop(system, c, WORKFLOWS[c]!, `r${round}-c${c}`);
          const key = `${system.name}@${c}`;
          passes.set(key, [...(passes.get(key) ?? []), pass]);
          console.error(
            `  round ${round + 1}/${ROUNDS} ${key.padEnd(9)} ${f2(pass.workflows / pass.seconds)} workflows/s`,
          );
        }
      }
    }

    const commitsAfter = await commitsByDatabase();
    const transactionsPerWorkflow = (system: string, database: string) => {
      const workflows = [...passes]
        .filter(([key]) => key.startsWith(`${system}@`))
        .reduce((n, [, list]) => n + list.reduce((m, p) => m + p.workflows, 0), 0);
      return (commitsAfter[database]! - commitsBefore[database]!) / workflows;
    };

    const results = {
      at: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        model: cpus()[0]?.model,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
      },
      versions: { postgres: postgresVersion, dbos: dbosVersion(), baton: "this checkout" },
      rounds: ROUNDS,
      workflowsPerPass: WORKFLOWS,
      figures: Object.fromEntries(
        [...passes].map(([key, list]) => [key, summarisePasses(list)] as const),
      ),
      /** Committed transactions in the system's database per workflow, all passes. */
      transactionsPerWorkflow: {
        Baton: transactionsPerWorkflow("Baton", DATABASES.baton),
        DBOS: transactionsPerWorkflow("DBOS", DATABASES.dbos),
      },
    };

    console.log(
      `Baton vs DBOS ${results.versions.dbos}, PostgreSQL ${postgresVersion}, Node ${process.version}, ${ROUNDS} rounds`,
    );
    console.log(
      "system  conc  workflows/s  latency p50/p99 ms   step gap p50/p99 ms (per-step overhead)",
    );
    for (const c of CONCURRENCIES) {
      for (const system of systems) {
        const r = results.figures[`${system.name}@${c}`]!;
        console.log(
          `${system.name.padEnd(7)} ${String(c).padStart(4)}  ${f2(r.workflowsPerSecond).padStart(11)}  ${`${f2(r.latencyMs.p50)} / ${f2(r.latencyMs.p99)}`.padStart(17)}   ${f2(r.stepGapMs.p50)} / ${f2(r.stepGapMs.p99)}`,
        );
      }
    }
    console.log(
      `transactions per workflow (pg_stat_database): Baton ${f2(results.transactionsPerWorkflow.Baton)}, DBOS ${f2(results.transactionsPerWorkflow.DBOS)}`,
    );
    const ratio = (c: number, pick: (r: ReturnType<typeof summarisePasses>) => number) =>
      pick(results.figures[`Baton@${c}`]!) / pick(results.figures[`DBOS@${c}`]!);
    const overhead = ratio(1, (r) => r.stepGapMs.p50);
    const throughput = ratio(32, (r) => r.workflowsPerSecond);
    console.log(
      `per-step overhead, Baton / DBOS at concurrency 1: p50 ${f2(overhead)}x (goal <= 0.5x: ${overhead <= 0.5 ? "met" : "missed"})`,
    );
    console.log(
      `throughput, Baton / DBOS at concurrency 32: ${f2(throughput)}x (goal >= 3x: ${throughput >= 3 ? "met" : "missed"})`,
    );
    mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
    writeFileSync(
      new URL("./results/latest.json", import.meta.url),
      `${JSON.stringify(results, null, 2)}\n`,
    );
  } finally {
    for (const system of systems.reverse()) await system.close();
    await dropDatabases();
  }
}

await main();
