import { createHash } from "node:crypto";
import type pg from "pg";
import { ConfigError } from "../../workflow/errors.js";
import type { Migration } from "../migration.js";
import { migrations as embedded } from "./migrations/embedded.js";

/**
 * Applies the embedded migrations not yet recorded in `<schema>.baton_migrations`, in one
 * transaction that first takes a transaction-scoped advisory lock keyed by the schema:
 * several workers starting at once queue on the lock, and each migration is applied
 * exactly once. The lock is released by the commit or rollback (safe behind a
 * transaction-mode pooler). A database newer than this build is refused, not touched.
 */
export async function applyPostgresMigrations(
  client: pg.ClientBase,
  schema: string,
  migrations: readonly Migration[] = embedded,
): Promise<void> {
  const latest = migrations.at(-1)?.version ?? 0;
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [migrationLockKey(schema)]);
    // Checked first: CREATE SCHEMA needs the CREATE privilege on the database even when the
    // schema exists, and a DBA may have created it for a less privileged role.
    const found = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
    if (found.rowCount === 0) await client.query(`CREATE SCHEMA "${schema}"`);
    await client.query(`SET LOCAL search_path TO "${schema}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS baton_migrations (
      version    integer PRIMARY KEY,
      name       text    NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
    const { rows } = await client.query<{ v: number | null }>(
      "SELECT max(version) AS v FROM baton_migrations",
    );
    const current = rows[0]?.v ?? 0;
    if (current > latest) {
      throw new ConfigError(
        `the Baton schema "${schema}" is at version ${current}, newer than this build of Baton knows (${latest}); upgrade Baton, or point it at another schema with "?schema=NAME"`,
      );
    }
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      await client.query(migration.sql);
      await client.query("INSERT INTO baton_migrations (version, name) VALUES ($1, $2)", [
        migration.version,
        migration.name,
      ]);
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

/** A 64-bit advisory lock key derived from the schema name, the same in every process. */
export function migrationLockKey(schema: string): string {
  return createHash("sha256")
    .update(`baton:migrate:${schema}`)
    .digest()
    .readBigInt64BE(0)
    .toString();
}
