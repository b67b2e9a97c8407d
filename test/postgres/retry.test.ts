/**
 * Transient failures, injected between the store and its pool: a connection refused (as
 * during a restart), a statement rolled back (deadlock), and the hard one — a statement
 * that committed but whose answer was lost with the connection.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { describe, expect, it } from "vitest";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import {
  postgresStatements,
  type PostgresStatements,
} from "../../src/store/postgres/postgres-sql.js";
import { usePostgres, type TestSchema } from "../support/postgres.js";

const postgres = usePostgres();
const run = (id: string) => ({ id, workflow: "wf", version: 1, input: null, priority: 0 });

type Fault = { statement: string; when: "before" | "after"; code: string };

function failure(code: string): Error {
  return Object.assign(new Error(`injected ${code}`), { code });
}

/** Wraps the store's pool so chosen statements fail once, before or after they run. */
function injectFaults(store: PostgresStore) {
  const faults: Fault[] = [];
  let refusals = 0;
  const wrapped = new WeakSet<pg.PoolClient>();
  const pool = store.pool as unknown as { connect: () => Promise<pg.PoolClient> };
  const connect = pool.connect.bind(pool);
  pool.connect = async () => {
    if (refusals > 0) {
      refusals--;
      throw failure("ECONNREFUSED");
    }
    const client = await connect();
    if (!wrapped.has(client)) {
      wrapped.add(client);
      // The store sends its statements as named (prepared) query configs.
      type Query = string | { text: string; name?: string; values?: unknown[] };
      const query = client.query.bind(client) as (
        query: Query,
        values?: unknown[],
      ) => Promise<unknown>;
      (client as unknown as { query: typeof query }).query = async (q, values) => {
        const text = typeof q === "string" ? q : q.text;
        const i = faults.findIndex((f) => f.statement === text);
        if (i === -1) return query(q, values);
        const [fault] = faults.splice(i, 1);
        if (fault!.when === "before") throw failure(fault!.code);
        await query(q, values);
        throw failure(fault!.code);
      };
    }
    return client;
  };
  return {
    /** The statement commits, then its answer is lost with the connection. */
    loseAnswer: (statement: string) =>
      faults.push({ statement, when: "after", code: "ECONNRESET" }),
    /** The statement fails before it runs, with `code`. */
    failBefore: (statement: string, code: string) =>
      faults.push({ statement, when: "before", code }),
    refuseConnections: (n: number) => (refusals = n),
    pending: () => faults.length,
  };
}

async function setup(): Promise<{
  schema: TestSchema;
  store: PostgresStore;
  sql: PostgresStatements;
  faults: ReturnType<typeof injectFaults>;
}> {
  const schema = await postgres.schema();
  const store = schema.open({ retryForMs: 2_000 });
  await store.ready();
  return { schema, store, sql: postgresStatements(schema.schema), faults: injectFaults(store) };
}

async function claimed(store: PostgresStore, id: string, workerId = "w1") {
  await store.createRun(run(id));
  const [r] = await store.claimRuns(workerId, ["wf"], 1, 60_000);
  return { runId: id, fence: r!.fence, workerId };
}

describe("postgres retries after transient failures", () => {
  it("a fenced write whose answer was lost reports what happened, exactly once", async () => {
    const { schema, store, sql, faults } = await setup();
    const lease = await claimed(store, "r");
    faults.loseAnswer(sql.writeStep);
    expect(
      await store.writeStep(lease, {
        seq: 0,
        name: "s",
        kind: "step",
        status: "completed",
        output: "1",
        attempts: 1,
      }),
    ).toBe(true);
    faults.loseAnswer(sql.finishRun);
    expect(await store.completeRun(lease, '"done"')).toBe(true);
    expect(faults.pending()).toBe(0);
    expect(await store.getRun("r")).toMatchObject({ status: "completed", output: '"done"' });
    expect((await store.loadJournal("r")).map((e) => [e.name, e.status, e.output])).toEqual([
      ["s", "completed", "1"],
    ]);
    expect((await store.listEvents("r")).map((e) => e.kind)).toEqual([
      "created",
      "claimed",
      "completed",
    ]);
    await schema.drop();
  });

  it("a handoff, a sleep and a retry whose answers were lost are applied once", async () => {
    const { schema, store, sql, faults } = await setup();
    let lease = await claimed(store, "r");
    faults.loseAnswer(sql.handoff);
    expect(await store.releaseRun(lease, "handoff")).toBe(true);
    expect(await store.getRun("r")).toMatchObject({ status: "queued", interruptions: 1 });
    for (const [reason, statement, status] of [
      ["sleep", sql.sleep, "sleeping"],
      ["retry", sql.requeue, "queued"],
    ] as const) {
      const [again] = await store.claimRuns("w1", ["wf"], 1, 60_000);
      lease = { ...lease, fence: again!.fence };
      faults.loseAnswer(statement);
      expect(await store.releaseRun(lease, reason)).toBe(true);
      expect((await store.getRun("r"))!.status).toBe(status);
    }
    expect((await store.listEvents("r")).map((e) => e.kind)).toEqual([
      "created",
      "claimed",
      "handoff",
      "claimed",
      "sleeping",
      "claimed",
    ]);
    await schema.drop();
  });

  it("a stale write is still refused when its first try failed in flight", async () => {
    const { schema, store, sql, faults } = await setup();
    const lease = await claimed(store, "r");
    await store.cancelRun("r");
    faults.failBefore(sql.finishRun, "ECONNRESET");
    expect(await store.completeRun(lease, '"late"')).toBe(false);
    faults.failBefore(sql.writeStep, "57P01");
    expect(
      await store.writeStep(lease, {
        seq: 0,
        name: "s",
        kind: "step",
        status: "completed",
        output: "1",
        attempts: 1,
      }),
    ).toBe(false);
    expect(await store.getRun("r")).toMatchObject({ status: "cancelled", output: null });
    await schema.drop();
  });

  it("a cancel whose answer was lost returns the cancelled run", async () => {
    const { schema, store, sql, faults } = await setup();
    await store.createRun(run("r"));
    faults.loseAnswer(sql.cancelRun);
    expect(await store.cancelRun("r")).toMatchObject({ id: "r", status: "cancelled", fence: 1 });
    await schema.drop();
  });

  it("a claim whose answer was lost is not re-sent; its runs are taken over when the lease expires", async () => {
    const { schema, store, sql, faults } = await setup();
    await store.createRun(run("r"));
    faults.loseAnswer(sql.claimRuns);
    // A lease long enough that a loaded machine cannot let it expire before the next claim.
    await expect(store.claimRuns("w1", ["wf"], 1, 1_500)).rejects.toMatchObject({
      code: "ECONNRESET",
    });
    expect(await store.claimRuns("w2", ["wf"], 1, 60_000)).toEqual([]);
    await sleep(1_600);
    expect(await store.claimRuns("w2", ["wf"], 1, 60_000)).toMatchObject([
      { id: "r", takeover: true, fence: 2 },
    ]);
    await schema.drop();
  });

  it("re-sends any statement that certainly did not run: refused connections, deadlocks", async () => {
    const { schema, store, sql, faults } = await setup();
    await store.createRun(run("r"));
    faults.refuseConnections(3);
    expect((await store.getRun("r"))!.id).toBe("r");
    faults.failBefore(sql.appendEvent, "40P01");
    faults.failBefore(sql.claimRuns, "57P03");
    await store.appendEvent({
      runId: "r",
      kind: "lease-lost",
      workerId: "w",
      fence: 1,
      detail: null,
    });
    expect(await store.claimRuns("w1", ["wf"], 1, 60_000)).toHaveLength(1);
    expect((await store.listEvents("r")).map((e) => e.kind)).toEqual([
      "created",
      "lease-lost",
      "claimed",
    ]);
    await schema.drop();
  });

  it("throws at once on an error no retry can fix", async () => {
    const { schema, store, sql, faults } = await setup();
    faults.failBefore(sql.getRun, "42P01");
    await expect(store.getRun("r")).rejects.toMatchObject({ code: "42P01" });
    await schema.drop();
  });
});
