import { ConfigError } from "../workflow/errors.js";
import { unsafeFencingDisabled } from "../internal/unsafe-switches.js";
import type { Store } from "./store.js";
import { SqliteStore, type SqliteSynchronous } from "./sqlite/sqlite-store.js";
import { PostgresStore } from "./postgres/postgres-store.js";
import { parsePostgresUrl } from "./postgres/postgres-options.js";

/** The store used when neither an option nor `BATON_STORE` names one. */
export const DEFAULT_STORE_URL = "sqlite:baton.db";

const SQLITE_OPTIONS = new Set(["synchronous"]);

/**
 * Opens the store a URL names:
 * - `sqlite:PATH[?synchronous=full|normal]` (PATH may be `:memory:` for a single process);
 *   migrated on open;
 * - `postgres://user:pass@host:port/db[?schema=baton&pool=10]`; connects and migrates on
 *   first use (see docs/postgres.md).
 */
export function openStore(url: string): Store {
  if (typeof url !== "string" || url.trim() === "") {
    throw new ConfigError(
      `store URL ${JSON.stringify(url)} is empty; use e.g. "${DEFAULT_STORE_URL}"`,
    );
  }
  if (url.startsWith("sqlite:")) return openSqlite(url);
  if (/^postgres(ql)?:\/\//.test(url)) {
    // Connects lazily: nothing is opened until the first call, which migrates the schema.
    return new PostgresStore(parsePostgresUrl(url));
  }
  throw new ConfigError(
    `store URL "${redact(url)}" is not one Baton knows; use "sqlite:PATH" (e.g. "${DEFAULT_STORE_URL}") ` +
      `or "postgres://user@host:5432/db"`,
  );
}

function openSqlite(url: string): SqliteStore {
  const [pathPart = "", query = ""] = url.slice("sqlite:".length).split("?", 2);
  const path = pathPart.startsWith("//") ? pathPart.slice(2) : pathPart;
  if (path === "") {
    throw new ConfigError(
      `store URL "${url}" names no file; use "sqlite:PATH", e.g. "${DEFAULT_STORE_URL}"`,
    );
  }
  const params = new URLSearchParams(query);
  for (const key of params.keys()) {
    if (!SQLITE_OPTIONS.has(key)) {
      throw new ConfigError(
        `store URL "${url}": unknown option "${key}"; SQLite accepts only "synchronous"`,
      );
    }
  }
  const synchronous = (params.get("synchronous") ?? "full").toUpperCase() as SqliteSynchronous;
  if (synchronous !== "FULL" && synchronous !== "NORMAL") {
    throw new ConfigError(
      `store URL "${url}": synchronous must be "full" or "normal", not "${params.get("synchronous")}"`,
    );
  }
  try {
    return new SqliteStore({
      path,
      synchronous,
      fencing: !unsafeFencingDisabled(),
    });
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`cannot open SQLite store "${path}": ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The URL without its password, safe to print. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, "//$1:***@");
}
