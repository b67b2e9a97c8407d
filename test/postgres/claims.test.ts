import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ClaimedRun } from "../../src/store/store.js";
import { usePostgres } from "../support/postgres.js";

const postgres = usePostgres();
const run = (id: string, priority = 0) => ({
  id,
  workflow: "wf",
  version: 1,
  input: null,
  priority,
});

describe("postgres claims", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("splits the queue between many concurrent claimers on several stores: each run exactly once", async () => {
    const schema = await postgres.schema();
    const stores = Array.from({ length: 3 }, () => schema.open({ poolSize: 4 }));
    const total = 300;
    const ids = Array.from({ length: total }, (_, i) => `r${i}`);
    for (let i = 0; i < total; i += 50) {
      await Promise.all(ids.slice(i, i + 50).map((id) => stores[0]!.createRun(run(id))));
    }
    const claimed: ClaimedRun[] = [];
    const startedAt = performance.now();
    await Promise.all(
      stores.flatMap((store, s) =>
        Array.from({ length: 4 }, async (_, c) => {
          for (;;) {
            const batch = await store.claimRuns(`w${s}-${c}`, ["wf"], 7, 60_000);
            if (batch.length === 0) return;
            claimed.push(...batch);
          }
        }),
      ),
    );
    const elapsed = performance.now() - startedAt;
    console.log(`claimed ${total} runs with 12 claimers on 3 stores in ${elapsed.toFixed(0)} ms`);
    expect(claimed.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(new Set(claimed.map((r) => r.fence))).toEqual(new Set([1]));
    const events = await postgres.admin<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema.schema}".events WHERE kind = 'claimed'`,
    );
    expect(events[0]!.n).toBe(total);
    await schema.drop();
  });

  it("gives an expired lease to exactly one of several racing claimers", async () => {
    const schema = await postgres.schema();
    const stores = Array.from({ length: 4 }, () => schema.open({ poolSize: 2 }));
    for (let round = 0; round < 10; round++) {
      await stores[0]!.createRun(run(`r${round}`));
      await stores[0]!.claimRuns("dead", ["wf"], 1, 1);
      await sleep(5);
      const results = await Promise.all(
        stores.map((s, i) => s.claimRuns(`w${i}`, ["wf"], 1, 60_000)),
      );
      const winners = results.flat();
      expect(winners).toHaveLength(1);
      expect(winners[0]).toMatchObject({ id: `r${round}`, takeover: true, fence: 2 });
    }
    await schema.drop();
  });

  it("computes leases on the database clock, whatever the worker's clock says", async () => {
    const schema = await postgres.schema();
    const honest = schema.open();
    const skewed = schema.open();
    await honest.createRun(run("live"));
    await honest.createRun(run("new"));
    const [live] = await honest.claimRuns("honest", ["wf"], 1, 60_000);
    // This process's clock jumps an hour ahead: a worker with a local-clock store would
    // see the live lease as expired and take it over, and write future times.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 3_600_000 });
    const dbBefore = await skewed.now();
    expect(Math.abs(dbBefore - (Date.now() - 3_600_000))).toBeLessThan(5_000);
    const claimed = await skewed.claimRuns("skewed", ["wf"], 10, 30_000);
    const dbAfter = await skewed.now();
    expect(claimed.map((r) => r.id)).toEqual(["new"]);
    const [mine] = claimed;
    expect(mine!.updatedAt).toBeGreaterThanOrEqual(dbBefore);
    expect(mine!.updatedAt).toBeLessThanOrEqual(dbAfter);
    expect(mine!.leaseExpiresAt! - mine!.updatedAt).toBe(30_000);
    expect(await skewed.getRun("live")).toMatchObject({ leaseOwner: "honest", fence: live!.fence });
    const renewed = await skewed.renewLeases(
      "skewed",
      [{ runId: "new", fence: 1, workerId: "skewed" }],
      30_000,
    );
    expect(renewed).toEqual([{ runId: "new", fence: 1 }]);
    expect((await skewed.getRun("new"))!.leaseExpiresAt!).toBeLessThan(Date.now() - 3_500_000);
    vi.useRealTimers();
    await schema.drop();
  });

  it("never lets a step write land under a fence a takeover has moved past", async () => {
    const schema = await postgres.schema();
    const [old, taker] = [schema.open(), schema.open()];
    let staleAccepted = 0;
    for (let round = 0; round < 30; round++) {
      const id = `r${round}`;
      await old.createRun(run(id));
      const [mine] = await old.claimRuns("old", ["wf"], 1, 1);
      await sleep(3);
      const stale = { runId: id, fence: mine!.fence, workerId: "old" };
      const write = old.writeStep(stale, {
        seq: 0,
        name: "s",
        kind: "step",
        status: "completed",
        output: "1",
        attempts: 1,
      });
      const takeover = (async () => {
        // SKIP LOCKED passes over the row while the write holds it; try again.
        for (;;) {
          const [taken] = await taker.claimRuns("new", ["wf"], 1, 60_000);
          if (taken) return { taken, journal: await taker.loadJournal(id) };
        }
      })();
      const [accepted, { taken, journal }] = await Promise.all([write, takeover]);
      expect(taken.fence).toBe(stale.fence + 1);
      if (accepted) {
        staleAccepted++;
        // Accepted means committed before the takeover: the new owner sees it.
        expect(journal.map((e) => [e.seq, e.fence])).toEqual([[0, stale.fence]]);
      } else {
        expect(journal).toEqual([]);
      }
    }
    console.log(`stale writes accepted before the takeover: ${staleAccepted}/30`);
    await schema.drop();
  });

  it("orders takeovers with handed-off runs, ahead of new work of the same priority", async () => {
    const schema = await postgres.schema();
    const store = schema.open();
    await store.createRun(run("orphan"));
    await store.claimRuns("dead", ["wf"], 1, 1);
    await sleep(5);
    await store.createRun(run("fresh"));
    await store.createRun(run("vip", 9));
    const order = await store.claimRuns("w", ["wf"], 10, 60_000);
    expect(order.map((r) => [r.id, r.takeover])).toEqual([
      ["vip", false],
      ["orphan", true],
      ["fresh", false],
    ]);
    await schema.drop();
  });
});
