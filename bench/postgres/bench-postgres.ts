/**
 * The PostgreSQL server for Baton's Postgres benchmarks, and a throwaway schema on it:
 * `BATON_BENCH_PG_URL` when set, else postgres://postgres@127.0.0.1:5432/test.
 * (Unlike the tests, no embedded server is started: the helper that starts one lives in
 * test/support/postgres.ts, which imports vitest and so cannot load outside a test.)
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { postgresAnswers } from "../../test/support/pg-answers.js";

const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test";

export type BenchSchema = {
  /** A store URL for a fresh schema of its own. */
  url: string;
  /** `SHOW server_version`. */
  version: string;
};

/** Runs `fn` with a fresh schema (dropped afterwards) on the benchmark server. */
export async function withBenchSchema<T>(fn: (schema: BenchSchema) => Promise<T>): Promise<T> {
  const url = process.env.BATON_BENCH_PG_URL ?? DEFAULT_URL;
  if (!(await postgresAnswers(url))) {
    throw new Error(
      `no PostgreSQL for the benchmark at ${url.replace(/:[^:@/]*@/, ":***@")}; start one there or set BATON_BENCH_PG_URL`,
    );
  }
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const schema = `baton_bench_${randomBytes(5).toString("hex")}`;
  try {
    const { rows } = await admin.query<{ server_version: string }>("SHOW server_version");
    const storeUrl = new URL(url);
    storeUrl.searchParams.set("schema", schema);
    return await fn({ url: storeUrl.toString(), version: rows[0]?.server_version ?? "" });
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await admin.end();
  }
}

/** True when `moduleUrl` is the script node was asked to run (not an import of it). */
export function isMain(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && fileURLToPath(moduleUrl) === process.argv[1];
}
