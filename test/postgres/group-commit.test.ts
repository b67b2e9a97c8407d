/**
 * Group commit on PostgreSQL: owner writes issued together go out as one statement, and
 * each keeps its own fence check and its own answer. Also the journals a claim returns.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { describe, expect, it } from "vitest";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { postgresStatements } from "../../src/store/postgres/postgres-sql.js";
import type { Lease, StepWrite } from "../../src/store/store.js";
import { usePostgres } from "../support/postgres.js";

const postgres = usePostgres();
const run = (id: string) => ({ id, workflow: "wf", version: 1, input: null, priority: 0 });
const step = (seq: number, output = String(seq)): StepWrite => ({
  seq,
  name: `s${seq}`,
  kind: "step",
  status: "completed",
  output,
  attempts: 1,
});

const failing = new WeakMap<PostgresStore, string>();

/** Makes the next statement with this text fail (on a store whose statements are counted). */
function failOnce(store: PostgresStore, text: string): void {
  failing.set(store, text);
}

/** Counts the statements the store sends, by text. */
function countStatements(store: PostgresStore): Map<string, number> {
  const counts = new Map<string, number>();
  const seen = new WeakSet<pg.PoolClient>();
  const pool = store.pool as unknown as { connect: () => Promise<pg.PoolClient> };
  const connect = pool.connect.bind(pool);
  pool.connect = async () => {
    const client = await connect();
    if (!seen.has(client)) {
      seen.add(client);
      const query = client.query.bind(client) as (q: unknown, v?: unknown) => Promise<unknown>;
      (client as unknown as { query: typeof query }).query = (q, v) => {
        const text = typeof q === "string" ? q : (q as { text: string }).text;
        counts.set(text, (counts.get(text) ?? 0) + 1);
        if (failing.get(store) === text) {
          failing.delete(store);
          return Promise.reject(Object.assign(new Error("injected"), { code: "XX000" }));
        }
        return query(q, v);
      };
    }
    return client;
  };
  return counts;
}

async function claimAll(store: PostgresStore, ids: string[], workerId = "w1"): Promise<Lease[]> {
  await Promise.all(ids.map((id) => store.createRun(run(id))));
  const claimed = await store.claimRuns(workerId, ["wf"], ids.length, 60_000);
  expect(claimed.map((r) => r.id).sort()).toEqual([...ids].sort());
  return ids.map((id) => ({ runId: id, fence: claimed.find((r) => r.id === id)!.fence, workerId }));
}

describe("postgres group commit", () => {
  it("refuses a stale fence inside a batch of step writes and accepts the others, in one statement", async () => {
    const schema = await postgres.schema();
    const store = schema.open();
    const sql = postgresStatements(schema.schema);
    const ids = ["a", "b", "c", "d", "e"];
    const leases = await claimAll(store, ids);
    // "c" is cancelled with compensation: its fence moves on, its owner's lease is stale.
    await store.cancelRun("c", { compensate: true });
    // "d" is written with a fence that was never its own.
    leases[3] = { ...leases[3]!, fence: leases[3]!.fence + 7 };
    const counts = countStatements(store);
    const answers = await Promise.all(leases.map((lease) => store.writeStep(lease, step(0))));
    expect(answers).toEqual([true, true, false, false, true]);
    expect(counts.get(sql.writeSteps)).toBe(1);
    expect(counts.get(sql.writeStep) ?? 0).toBe(0);
    for (const id of ids) {
      const journal = await store.loadJournal(id);
      expect(
        journal.map((e) => [e.seq, e.output]),
        id,
      ).toEqual(id === "c" || id === "d" ? [] : [[0, "0"]]);
    }
    await schema.drop();
  });

  it("keeps a run's writes to one entry in order: the same entry twice goes in the next batch", async () => {
    const schema = await postgres.schema();
    const store = schema.open();
    const [lease] = await claimAll(store, ["r"]);
    const running: StepWrite = { ...step(0), status: "running", output: null, attempts: 0 };
    const answers = await Promise.all([
      store.writeStep(lease!, running),
      store.writeStep(lease!, step(0, "first")),
      // A completed entry is final: a later write to it is refused.
      store.writeStep(lease!, step(0, "second")),
      store.writeStep(lease!, step(1)),
    ]);
    expect(answers).toEqual([true, true, false, true]);
    expect((await store.loadJournal("r")).map((e) => [e.seq, e.status, e.output])).toEqual([
      [0, "completed", "first"],
      [1, "completed", "1"],
    ]);
    await schema.drop();
  });

  it("finishes and hands off runs in batches, each on its own fence, with their events", async () => {
    const schema = await postgres.schema();
    const store = schema.open();
    const sql = postgresStatements(schema.schema);
    const ids = ["a", "b", "c", "d", "e", "f"];
    const leases = await claimAll(store, ids);
    // "b" is cancelled; "c" and "e" are still running, but written with a fence not theirs.
    await store.cancelRun("b");
    const stale = (lease: Lease) => ({ ...lease, fence: lease.fence + 7 });
    leases[2] = stale(leases[2]!);
    leases[4] = stale(leases[4]!);
    const counts = countStatements(store);
    const finished = await Promise.all(
      leases.slice(0, 3).map((lease) => store.completeRun(lease, `"${lease.runId}"`)),
    );
    const handedOff = await Promise.all(
      leases.slice(3).map((lease) => store.releaseRun(lease, "handoff")),
    );
    expect(finished).toEqual([true, false, false]);
    expect(handedOff).toEqual([true, false, true]);
    expect(counts.get(sql.finishRuns)).toBe(1);
    expect(counts.get(sql.handoffs)).toBe(1);
    const runs = await store.listRuns({ limit: 10 });
    const byId = new Map(runs.map((r) => [r.id, r]));
    expect(["a", "b", "c", "d", "e", "f"].map((id) => byId.get(id)!.status)).toEqual([
      "completed",
      "cancelled",
      "running",
      "queued",
      "running",
      "queued",
    ]);
    expect(byId.get("a")!.output).toBe('"a"');
    expect(byId.get("d")).toMatchObject({ resumed: true, interruptions: 1, leaseOwner: null });
    const kinds = async (id: string) => (await store.listEvents(id)).map((e) => e.kind);
    expect(await kinds("a")).toEqual(["created", "claimed", "completed"]);
    expect(await kinds("b")).toEqual(["created", "claimed", "cancelled"]);
    expect(await kinds("c")).toEqual(["created", "claimed"]);
    expect(await kinds("e")).toEqual(["created", "claimed"]);
    expect(await kinds("d")).toEqual(["created", "claimed", "handoff"]);
    const handoff = (await store.listEvents("f")).at(-1)!;
    expect(handoff).toMatchObject({ kind: "handoff", workerId: "w1", fence: leases[5]!.fence });
    await schema.drop();
  });

  it("creates runs in a batch, and answers a duplicate id with the existing run", async () => {
    const schema = await postgres.schema();
    const store = schema.open();
    const sql = postgresStatements(schema.schema);
    await store.createRun({ ...run("old"), priority: 5 });
    const counts = countStatements(store);
    const results = await Promise.all([
      store.createRun(run("x")),
      store.createRun(run("old")),
      store.createRun(run("y")),
      store.createRun({ ...run("x"), priority: 9 }),
    ]);
    expect(results.map((r) => [r.run.id, r.created, r.run.priority])).toEqual([
      ["x", true, 0],
      ["old", false, 5],
      ["y", true, 0],
      ["x", false, 0],
    ]);
    expect(counts.get(sql.createRuns)).toBe(1);
    expect((await store.listEvents("x")).map((e) => e.kind)).toEqual(["created"]);
    await schema.drop();
  });

  it("returns the journal with the claim: empty for a first claim, complete for a resumed run", async () => {
    const schema = await postgres.schema();
    const store = schema.open();
    const sql = postgresStatements(schema.schema);
    const [handed, taken] = await claimAll(store, ["handed", "taken"], "w1");
    const counts = countStatements(store);
    await store.createRun(run("fresh"));
    for (const lease of [handed!, taken!])
      await Promise.all([store.writeStep(lease, step(0)), store.writeStep(lease, step(1))]);
    await store.releaseRun(handed!, "handoff");
    // "taken" is left to expire: a takeover, whose owner could still be writing.
    expect(await store.renewLeases("w1", [taken!], 1)).toHaveLength(1);
    await sleep(20);
    const claimed = await store.claimRuns("w2", ["wf"], 10, 60_000);
    const journals = new Map<string, number[]>();
    for (const r of claimed)
      journals.set(
        r.id,
        (await r.journal!).map((e) => e.seq),
      );
    expect(journals).toEqual(
      new Map([
        ["handed", [0, 1]],
        ["taken", [0, 1]],
        ["fresh", []],
      ]),
    );
    // Entry for entry what loadJournal reads, every field.
    for (const id of ["handed", "taken"])
      expect(await claimed.find((r) => r.id === id)!.journal).toEqual(await store.loadJournal(id));
    // The handed-off run's journal came with the claim, the new run's is known empty, and
    // the taken-over run's was read after the claim committed.
    expect(counts.get(sql.loadJournals)).toBe(1);
    expect(counts.get(sql.loadJournal)).toBe(2);
    // If that read fails, each run's journal is read on its own.
    const fenceOf = (id: string) => claimed.find((r) => r.id === id)!.fence;
    expect(
      await store.renewLeases(
        "w2",
        [{ runId: "taken", fence: fenceOf("taken"), workerId: "w2" }],
        1,
      ),
    ).toHaveLength(1);
    await sleep(20);
    failOnce(store, sql.loadJournals);
    const [again] = await store.claimRuns("w3", ["wf"], 10, 60_000);
    expect(again!.id).toBe("taken");
    expect((await again!.journal!).map((e) => e.seq)).toEqual([0, 1]);
    expect(counts.get(sql.loadJournals)).toBe(2);
    expect(counts.get(sql.loadJournal)).toBe(3);
    await schema.drop();
  });

  it("never lets a batched step write land unseen under a fence a takeover has moved past", async () => {
    const schema = await postgres.schema();
    const [old, taker] = [schema.open(), schema.open()];
    let staleAccepted = 0;
    let refused = 0;
    for (let round = 0; round < 40; round++) {
      const ids = Array.from({ length: 6 }, (_, i) => `r${round}-${i}`);
      await Promise.all(ids.map((id) => old.createRun(run(id))));
      const mine = await old.claimRuns("old", ["wf"], ids.length, 1);
      await sleep(3);
      // Six writes in one batch, racing a takeover of every run by another store.
      const writes = Promise.all(
        mine.map((r) =>
          old.writeStep({ runId: r.id, fence: r.fence, workerId: "old" }, step(0, "stale")),
        ),
      );
      const takeover = (async () => {
        const taken = new Map<string, number[]>();
        while (taken.size < ids.length) {
          for (const r of await taker.claimRuns("new", ["wf"], ids.length, 60_000))
            taken.set(
              r.id,
              (await (r.journal ?? taker.loadJournal(r.id))).map((e) => e.fence),
            );
        }
        return taken;
      })();
      const [accepted, taken] = await Promise.all([writes, takeover]);
      mine.forEach((r, i) => {
        // Accepted means committed before the takeover, so the claim's journal holds it.
        expect(taken.get(r.id), r.id).toEqual(accepted[i] ? [r.fence] : []);
        if (accepted[i]) staleAccepted++;
        else refused++;
      });
    }
    console.log(
      `batched stale writes: ${staleAccepted} accepted before the takeover, ${refused} refused`,
    );
    await schema.drop();
  });
});
