import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/workflow/errors.js";
import { migrations } from "../../src/store/postgres/migrations/embedded.js";
import { usePostgres } from "../support/postgres.js";

const postgres = usePostgres();
const run = (id: string) => ({ id, workflow: "wf", version: 1, input: null, priority: 0 });

describe("postgres migrations and schemas", () => {
  it("applies each migration exactly once when many stores open a fresh schema at once", async () => {
    const schema = await postgres.schema();
    const stores = Array.from({ length: 8 }, () => schema.open({ poolSize: 2 }));
    await Promise.all(stores.map((store) => store.ready()));
    const applied = await postgres.admin<{ version: number; name: string }>(
      `SELECT version, name FROM "${schema.schema}".baton_migrations ORDER BY version`,
    );
    expect(applied).toEqual(migrations.map((m) => ({ version: m.version, name: m.name })));
    // And every store works on the result.
    await Promise.all(stores.map((store, i) => store.createRun(run(`r${i}`))));
    expect(Object.values(await stores[0]!.countRuns())).toEqual([8]);
    await schema.drop();
  });

  it("refuses a schema from a newer Baton, naming both versions, without touching it", async () => {
    const schema = await postgres.schema();
    const store = schema.open();
    await store.createRun(run("kept"));
    await postgres.admin(
      `INSERT INTO "${schema.schema}".baton_migrations (version, name) VALUES (999, '999_future.sql')`,
    );
    const newer = schema.open();
    const error = await newer.getRun("kept").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(
      new RegExp(
        `schema "${schema.schema}" is at version 999, newer than this build of Baton knows \\(\\d+\\); upgrade Baton`,
      ),
    );
    // Refused again on the next call, not half-opened.
    await expect(newer.countRuns()).rejects.toBeInstanceOf(ConfigError);
    const rows = await postgres.admin(`SELECT id FROM "${schema.schema}".runs`);
    expect(rows).toEqual([{ id: "kept" }]);
    await schema.drop();
  });

  it("lives beside the application's tables: same-named tables elsewhere are untouched", async () => {
    const app = await postgres.schema();
    await postgres.admin(`CREATE SCHEMA "${app.schema}"`);
    await postgres.admin(`CREATE TABLE "${app.schema}".runs (id int PRIMARY KEY, note text)`);
    await postgres.admin(`INSERT INTO "${app.schema}".runs VALUES (1, 'the app''s own')`);
    const baton = await postgres.schema();
    const store = baton.open();
    await store.createRun(run("r"));
    expect(await postgres.admin(`SELECT * FROM "${app.schema}".runs`)).toEqual([
      { id: 1, note: "the app's own" },
    ]);
    expect(await postgres.admin(`SELECT id FROM "${baton.schema}".runs`)).toEqual([{ id: "r" }]);
    await baton.drop();
    await app.drop();
  });

  it("keeps two schemas apart: runs, claims and events", async () => {
    const [a, b] = [await postgres.schema(), await postgres.schema()];
    const [storeA, storeB] = [a.open(), b.open()];
    await storeA.createRun(run("only-in-a"));
    expect(await storeB.getRun("only-in-a")).toBeUndefined();
    expect(await storeB.claimRuns("w", ["wf"], 10, 10_000)).toEqual([]);
    expect((await storeA.claimRuns("w", ["wf"], 10, 10_000)).map((r) => r.id)).toEqual([
      "only-in-a",
    ]);
    expect(await storeB.listEvents("only-in-a")).toEqual([]);
    await a.drop();
    await b.drop();
  });

  it("uses a schema that already exists (created by a DBA) and creates one that does not", async () => {
    const schema = await postgres.schema();
    await postgres.admin(`CREATE SCHEMA "${schema.schema}"`);
    const store = schema.open();
    await store.createRun(run("r"));
    expect((await store.getRun("r"))?.status).toBe("queued");
    await schema.drop();
  });
});
