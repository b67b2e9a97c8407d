/**
 * A real Postgres restart, on a throwaway embedded server this file starts (the shared
 * test server is never restarted). Skipped, with the reason, where no embedded server can run.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../support/postgres.js";
import { waitFor } from "../support/wait-for.js";

let server: EmbeddedPostgres | undefined;
let unavailable: string | undefined;
const stores: PostgresStore[] = [];
const run = (id: string) => ({ id, workflow: "wf", version: 1, input: null, priority: 0 });

beforeAll(async () => {
  try {
    server = await startEmbeddedPostgres();
  } catch (error) {
    unavailable = (error as Error).message;
  }
});

afterAll(async () => {
  for (const store of stores) await store.close();
  await server?.stop();
});

function open(retryForMs: number): PostgresStore {
  const store = new PostgresStore({ connectionString: server!.url, schema: "baton", retryForMs });
  stores.push(store);
  return store;
}

describe("postgres restart", () => {
  it("is survived: statements wait it out, the listener reconnects, leases and fences hold", async (ctx) => {
    if (!server) return ctx.skip(`no embedded Postgres: ${unavailable}`);
    const worker = open(10_000);
    const client = open(10_000);
    let woken = 0;
    const stopListening = worker.onWake(() => woken++);
    await client.createRun(run("r"));
    const [claimed] = await worker.claimRuns("w1", ["wf"], 1, 30_000);
    const lease = { runId: "r", fence: claimed!.fence, workerId: "w1" };
    await waitFor(() => worker.wakeConnections === 1);

    await server.halt();
    const duringOutage = worker.getRun("r");
    await new Promise((resolve) => setTimeout(resolve, 500));
    const restartedAt = performance.now();
    await server.start();
    expect((await duringOutage)?.status).toBe("running");
    console.log(
      `a read issued during a 500 ms outage answered ${(performance.now() - restartedAt).toFixed(0)} ms after the server was back`,
    );

    await waitFor(() => worker.wakeConnections === 2, 10_000);
    const before = woken;
    await client.createRun(run("after"));
    await waitFor(() => woken > before, 2_000);

    expect(await worker.renewLeases("w1", [lease], 30_000)).toEqual([
      { runId: "r", fence: lease.fence },
    ]);
    expect(
      await worker.writeStep(lease, {
        seq: 0,
        name: "s",
        kind: "step",
        status: "completed",
        output: "1",
        attempts: 1,
      }),
    ).toBe(true);
    expect(await worker.completeRun(lease, '"ok"')).toBe(true);
    expect(await client.getRun("r")).toMatchObject({
      status: "completed",
      output: '"ok"',
      fence: 1,
    });
    stopListening();
  });

  it("reports the outage once it outlasts the retry budget, and recovers after it", async (ctx) => {
    if (!server) return ctx.skip(`no embedded Postgres: ${unavailable}`);
    const store = open(300);
    await store.createRun(run("x"));
    await server.halt();
    try {
      await expect(store.getRun("x")).rejects.toMatchObject({
        code: expect.stringMatching(/^(ECONNREFUSED|57P03)$/) as unknown,
      });
    } finally {
      await server.start();
    }
    expect((await store.getRun("x"))?.id).toBe("x");
  });
});
