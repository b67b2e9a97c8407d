import type Database from "better-sqlite3";
import { migrations } from "./migrations/embedded.js";
import { ConfigError } from "../../workflow/errors.js";

/**
 * Applies the embedded migrations not yet recorded in `baton_migrations`, each in an
 * IMMEDIATE transaction, so several processes opening one file at once apply each
 * migration exactly once. A database newer than this build is refused, not touched.
 */
export function applySqliteMigrations(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS baton_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`);
  const latest = migrations.at(-1)?.version ?? 0;
  const apply = db.transaction(() => {
    const row = db.prepare(`SELECT max(version) AS v FROM baton_migrations`).get() as {
      v: number | null;
    };
    const current = row.v ?? 0;
    if (current > latest) {
      throw new ConfigError(
        `the database is at schema version ${current}, newer than this build of Baton knows (${latest}); upgrade Baton`,
      );
    }
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      db.exec(migration.sql);
      db.prepare(`INSERT INTO baton_migrations (version, name, applied_at) VALUES (?, ?, ?)`).run(
        migration.version,
        migration.name,
        Date.now(),
      );
    }
  });
  apply.immediate();
}
