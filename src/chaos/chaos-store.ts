/**
 * Where a chaos run keeps its runs: never in a database that holds anything else. The
 * default store (`sqlite:baton.db`) becomes a fresh SQLite file in the run's directory; a
 * SQLite path must not exist yet; a Postgres URL gets a fresh schema, dropped at the end.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { DEFAULT_STORE_URL, openStore, redact } from "../store/open-store.js";
import { SqliteStore } from "../store/sqlite/sqlite-store.js";
import type { Store } from "../store/store.js";
import { ConfigError } from "../workflow/errors.js";

export type ChaosStore = {
  /** The URL the harness and its workers use. */
  url: string;
  /** Safe to print. */
  description: string;
  /** Drops the Postgres schema (SQLite files go with the run's directory). */
  dispose(): Promise<void>;
};

const POSTGRES = /^postgres(ql)?:\/\//;

export function prepareChaosStore(
  store: string | undefined,
  dir: string,
  seed: number,
): ChaosStore {
  if (store === undefined || store === DEFAULT_STORE_URL) {
    const url = `sqlite:${join(dir, "chaos.db")}`;
    return { url, description: url, dispose: () => Promise.resolve() };
  }
  if (store.startsWith("sqlite:")) {
    const path = store.slice("sqlite:".length).split("?", 1)[0] ?? "";
    if (path === ":memory:" || path === "") {
      throw new ConfigError(
        `chaos store "${store}": workers are separate processes, so SQLite needs a file; use sqlite:PATH`,
      );
    }
    if (existsSync(path)) {
      throw new ConfigError(
        `chaos store "${store}": ${path} exists; a chaos run only writes into a fresh store. ` +
          `Name a file that does not exist yet, or leave --store out for a temporary one`,
      );
    }
    return { url: store, description: store, dispose: () => Promise.resolve() };
  }
  if (POSTGRES.test(store)) {
    const schema = `baton_chaos_${seed}_${Math.random().toString(36).slice(2, 8)}`;
    const url = new URL(store);
    url.searchParams.set("schema", schema);
    const admin = new URL(store);
    for (const param of ["schema", "pool", "connect_timeout"]) admin.searchParams.delete(param);
    return {
      url: url.toString(),
      description: `${redact(url.toString())} (a fresh schema, dropped at the end)`,
      async dispose() {
        const client = new pg.Client({ connectionString: admin.toString() });
        client.on("error", () => undefined);
        await client.connect();
        try {
          await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        } finally {
          await client.end();
        }
      },
    };
  }
  throw new ConfigError(
    `chaos store "${redact(store)}" is not one Baton knows; use sqlite:PATH or postgres://...`,
  );
}

/**
 * The harness's own connection. On SQLite it waits at most 100 ms for the write lock
 * (better-sqlite3 waits synchronously): a worker frozen inside a transaction holds the
 * lock, and the harness, which is the one to continue it, must not freeze with it.
 */
export function openHarnessStore(url: string): Store {
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length).split("?", 1)[0] ?? "";
    return new SqliteStore({ path, busyTimeoutMs: 100, wakeIntervalMs: 1_000 });
  }
  return openStore(url);
}
