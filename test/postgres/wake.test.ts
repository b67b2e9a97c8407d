import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { usePostgres } from "../support/postgres.js";
import { waitFor } from "../support/wait-for.js";

const postgres = usePostgres();
const run = (id: string) => ({ id, workflow: "wf", version: 1, input: null, priority: 0 });

/** Counts wake-ups of `store`, and waits for the next one. */
async function listen(store: PostgresStore) {
  let count = 0;
  let waiter: (() => void) | undefined;
  const stop = store.onWake(() => {
    count++;
    waiter?.();
  });
  // Listening once the LISTEN connection is up (it wakes once then: work may have arrived).
  await waitFor(() => store.wakeConnections > 0 && count > 0, 5_000);
  return {
    stop,
    get count() {
      return count;
    },
    /** Runs `action`; resolves with the ms until the wake-up that follows it. */
    async next(action: () => Promise<unknown>, timeoutMs = 2_000): Promise<number> {
      const woken = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no wake-up")), timeoutMs);
        waiter = () => {
          clearTimeout(timer);
          waiter = undefined;
          resolve();
        };
      });
      const startedAt = performance.now();
      await Promise.all([action(), woken]);
      return performance.now() - startedAt;
    },
  };
}

async function listeningBackends(applicationName: string): Promise<number> {
  const rows = await postgres.admin<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN %'",
    [applicationName],
  );
  return rows[0]!.n;
}

describe("postgres NOTIFY wake-ups", () => {
  it("wakes another store's listener on create, handoff, sleep, retry and cancel", async () => {
    const schema = await postgres.schema();
    const [worker, client] = [schema.open(), schema.open()];
    const wake = await listen(worker);
    await wake.next(() => client.createRun(run("a")));
    const [claimed] = await client.claimRuns("w", ["wf"], 1, 10_000);
    const lease = { runId: "a", fence: claimed!.fence, workerId: "w" };
    await wake.next(() => client.releaseRun(lease, "handoff"));
    for (const reason of ["sleep", "retry"] as const) {
      const [again] = await client.claimRuns("w", ["wf"], 1, 10_000);
      await wake.next(() => client.releaseRun({ ...lease, fence: again!.fence }, reason));
    }
    await wake.next(() => client.cancelRun("a"));
    wake.stop();
    await schema.drop();
  });

  it("does not wake listeners of another schema", async () => {
    const [a, b] = [await postgres.schema(), await postgres.schema()];
    const wakeB = await listen(b.open());
    const before = wakeB.count;
    await a.open().createRun(run("r"));
    await sleep(200);
    expect(wakeB.count).toBe(before);
    wakeB.stop();
    await a.drop();
    await b.drop();
  });

  it("reconnects when its connection is killed, and wakes once it listens again", async () => {
    const schema = await postgres.schema();
    const [worker, client] = [schema.open(), schema.open()];
    const wake = await listen(worker);
    const before = wake.count;
    await postgres.admin(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN %'",
      [postgres.applicationName],
    );
    await waitFor(() => worker.wakeConnections === 2, 5_000);
    expect(wake.count).toBeGreaterThan(before);
    await wake.next(() => client.createRun(run("after-reconnect")));
    wake.stop();
    await schema.drop();
  });

  it("closes the LISTEN connection when the last listener leaves, and opens it again on demand", async () => {
    const schema = await postgres.schema();
    const store = schema.open();
    const first = await listen(store);
    const second = store.onWake(() => undefined);
    expect(await listeningBackends(postgres.applicationName)).toBe(1);
    first.stop();
    expect(await listeningBackends(postgres.applicationName)).toBe(1);
    second();
    await waitFor(async () => (await listeningBackends(postgres.applicationName)) === 0, 2_000);
    const again = await listen(store);
    await again.next(() => schema.open().createRun(run("r")));
    again.stop();
    await schema.drop();
  });

  it("delivers a wake-up within milliseconds of the commit", async () => {
    const schema = await postgres.schema();
    const [worker, client] = [schema.open(), schema.open()];
    await client.ready();
    const wake = await listen(worker);
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++)
      latencies.push(await wake.next(() => client.createRun(run(`r${i}`))));
    latencies.sort((x, y) => x - y);
    const p50 = latencies[10]!;
    // From the start of createRun to the listener's call: a round trip and a NOTIFY.
    expect(p50).toBeLessThan(50);
    console.log(
      `NOTIFY wake-up after createRun: p50 ${p50.toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`,
    );
    wake.stop();
    await schema.drop();
  });
});
