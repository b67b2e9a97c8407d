import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/workflow/errors.js";
import { openStore } from "../../src/store/open-store.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { parsePostgresUrl, redactPostgresUrl } from "../../src/store/postgres/postgres-options.js";

function configError(open: () => unknown): ConfigError {
  try {
    open();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("postgres store URLs", () => {
  it.each([
    ["postgres://me:secret@h:99999/db", /is not a valid URL \(check the port/],
    [
      "postgres://me:secret@h/db?schema=Bad-Name",
      /schema "Bad-Name" is not a lowercase SQL identifier/,
    ],
    ["postgres://me:secret@h/db?schema=" + "s".repeat(59), /at most 58 characters/],
    ["postgres://me:secret@h/db?pool=0", /pool must be a whole number from 1 to 1000, not 0/],
    ["postgres://me:secret@h/db?pool=ten", /pool must be a whole number from 1 to 1000, not "ten"/],
    ["postgres://me:secret@h/db?connect_timeout=-1", /connect_timeout must be a whole number/],
    [
      "postgres://me:secret@h/db?sslmod=require",
      /unknown option "sslmod"; Baton reads schema, pool/,
    ],
    ["postgres://me:sec%zzret@h/db", /the password is not valid percent-encoding/],
  ])("refuses %j with a ConfigError that names the value and the fix", (url, message) => {
    const error = configError(() => openStore(url));
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain("secret");
    expect(error.message).not.toContain("sec%zzret");
  });

  it("reads Baton's options and passes pg's own on, without Baton's", () => {
    expect(
      parsePostgresUrl(
        "postgresql://me:p%40ss@db.example:6432/app?schema=jobs&pool=4&connect_timeout=3&sslmode=require&application_name=api",
      ),
    ).toEqual({
      connectionString:
        "postgresql://me:p%40ss@db.example:6432/app?sslmode=require&application_name=api",
      schema: "jobs",
      poolSize: 4,
      connectTimeoutMs: 3000,
    });
    // A host given as a parameter (a Unix socket), as pg allows.
    expect(parsePostgresUrl("postgres://me@/app?host=/var/run/postgresql").connectionString).toBe(
      "postgres://me@/app?host=%2Fvar%2Frun%2Fpostgresql",
    );
  });

  it("opens lazily: openStore connects to nothing until the first call", async () => {
    const store = openStore("postgres://nobody:pw@127.0.0.1:1/none?schema=lazy&pool=3");
    expect(store).toBeInstanceOf(PostgresStore);
    expect(store.capabilities).toEqual({ clock: "database", wake: "notify", multiMachine: true });
    expect(store.description).toBe("postgres://nobody:***@127.0.0.1:1/none (schema lazy)");
    expect((store as PostgresStore).options).toMatchObject({ schema: "lazy", poolSize: 3 });
    await store.close();
  });

  it("gives up on an unreachable server after its retry budget, with the connection error", async () => {
    const store = new PostgresStore({
      connectionString: "postgres://nobody@127.0.0.1:1/none",
      retryForMs: 200,
    });
    const startedAt = Date.now();
    await expect(store.getRun("r")).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(200);
    await store.close();
    await expect(store.getRun("r")).rejects.toThrow(/is closed/);
  });

  it("hides passwords, in the user info and in a password parameter", () => {
    expect(redactPostgresUrl("postgres://me:pw@h:5432/db")).toBe("postgres://me:***@h:5432/db");
    expect(redactPostgresUrl("postgres://me@h/db?password=pw&pool=2")).toBe(
      "postgres://me@h/db?password=***&pool=2",
    );
    expect(redactPostgresUrl("postgres://me:p w@/db")).toBe("postgres://me:***@/db");
  });
});
