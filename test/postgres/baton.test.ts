/** Baton end to end on the PostgreSQL store: workers on two stores (two "machines"). */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { Baton, defineWorkflow } from "../../src/index.js";
import { usePostgres } from "../support/postgres.js";
import { waitFor } from "../support/wait-for.js";

const postgres = usePostgres();

const executions = new Map<string, number>();
const agent = defineWorkflow({ name: "agent" }, async (ctx, input: { n: number }) => {
  const plan = await ctx.step("plan", () => input.n * 2);
  const work = await ctx.step("work", async () => {
    executions.set(ctx.runId, (executions.get(ctx.runId) ?? 0) + 1);
    await sleep(100);
    return plan + 1;
  });
  await ctx.sleep("think", 20);
  return { result: await ctx.step("finish", () => work) };
});

describe("Baton on postgres", () => {
  it("runs workflows across workers of two stores, handing off on a graceful stop", async () => {
    const schema = await postgres.schema();
    const [a, b] = await Promise.all([
      Baton.open({ store: schema.url, workflows: [agent] }),
      Baton.open({ store: schema.url, workflows: [agent] }),
    ]);
    try {
      const options = { handleSignals: false, leaseMs: 2_000, pollMs: 200, concurrency: 8 };
      const first = a.worker(options);
      const second = b.worker(options);
      await Promise.all([first.start(), second.start()]);
      const handles = await Promise.all(
        Array.from({ length: 24 }, (_, n) => a.start(agent, { n }, { id: `run-${n}` })),
      );
      // Stop the first worker while it holds runs in their "work" step.
      await waitFor(async () =>
        (await a.list({ status: "running", limit: 100 })).some((r) => r.leaseOwner === first.id),
      );
      await first.stop("test: scale down");
      const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 15_000 })));
      expect(results).toEqual(Array.from({ length: 24 }, (_, n) => ({ result: n * 2 + 1 })));
      // Completed steps never ran again, and the stopped worker's runs moved to the other one.
      expect([...executions.values()].every((n) => n === 1)).toBe(true);
      const handedOff = await postgres.admin<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${schema.schema}".events
         WHERE kind IN ('handoff', 'sleeping') AND worker_id = $1`,
        [first.id],
      );
      expect(handedOff[0]!.n).toBeGreaterThan(0);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await schema.drop();
    }
  });
});
