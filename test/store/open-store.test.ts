import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/index.js";
import { openStore, redact } from "../../src/store/open-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { tempDir } from "../support/temp-dir.js";

describe("store URLs", () => {
  it.each([
    ["", /is empty; use e.g. "sqlite:baton.db"/],
    ["sqlite:", /names no file/],
    [
      "sqlite:x.db?synchronous=sometimes",
      /synchronous must be "full" or "normal", not "sometimes"/,
    ],
    ["sqlite:x.db?journal=off", /unknown option "journal"/],
    [
      "mongodb://user:secret@host/db",
      /store URL "mongodb:\/\/user:\*\*\*@host\/db" is not one Baton knows/,
    ],
    ["baton.db", /is not one Baton knows; use "sqlite:PATH"/],
  ])("refuses %j with a message that names the fix", (url, message) => {
    const error = (() => {
      try {
        openStore(url);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain("secret");
  });

  it("opens a file with the synchronous level asked for, in WAL mode", async () => {
    const dir = tempDir();
    try {
      for (const [query, level] of [
        ["", 2],
        ["?synchronous=normal", 1],
      ] as const) {
        const store = openStore(`sqlite:${join(dir.path, `s${level}.db`)}${query}`) as SqliteStore;
        expect(store.db.pragma("synchronous", { simple: true })).toBe(level);
        expect(store.db.pragma("journal_mode", { simple: true })).toBe("wal");
        await store.close();
      }
    } finally {
      dir.remove();
    }
  });

  it("refuses a database from a newer Baton without touching it", async () => {
    const dir = tempDir();
    try {
      const path = join(dir.path, "future.db");
      const store = new SqliteStore({ path });
      await store.createRun({ id: "r", workflow: "w", version: 1, input: null, priority: 0 });
      store.db.prepare("INSERT INTO baton_migrations VALUES (999, '999_future.sql', 0)").run();
      await store.close();
      expect(() => new SqliteStore({ path })).toThrow(
        /schema version 999, newer than this build of Baton knows \(\d+\); upgrade Baton/,
      );
      const raw = new Database(path);
      expect(raw.prepare("SELECT id FROM runs").all()).toEqual([{ id: "r" }]);
      raw.close();
    } finally {
      dir.remove();
    }
  });

  it("redacts passwords", () => {
    expect(redact("postgres://me:pw@h:5432/db")).toBe("postgres://me:***@h:5432/db");
  });
});
