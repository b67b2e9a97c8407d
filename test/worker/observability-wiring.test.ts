import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import type { ApiRunDetails } from "../../src/http/api-routes.js";
import { defineWorkflow } from "../../src/workflow/define-workflow.js";
import { openTestBaton } from "../support/baton-harness.js";
import { waitFor } from "../support/wait-for.js";

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
});
afterAll(() => {
  trace.disable();
  context.disable();
});
beforeEach(() => exporter.reset());

let searching = false;
const research = defineWorkflow(
  { name: "research", version: 1 },
  async (ctx, _input: { topic: string }) => {
    const plan = await ctx.step("plan", () => "p");
    const found = await ctx.step("search", async () => {
      searching = true;
      await new Promise((r) => setTimeout(r, 300));
      return "s";
    });
    return plan + found + (await ctx.step("write", () => "w"));
  },
);

const sample = (text: string, series: string) =>
  Number(
    text
      .split("\n")
      .find((l) => l.startsWith(`${series} `))
      ?.slice(series.length + 1),
  );

it("records a handoff: metrics, spans and the timeline", async () => {
  const t = await openTestBaton({ workflows: [research] });
  try {
    const a = await t.startWorker({ http: { port: 0 }, concurrency: 1 });
    const run = await t.baton.start(research, { topic: "x" }, { id: "r1" });
    await waitFor(() => searching);
    await a.stop("test");
    const b = await t.startWorker({ http: { port: 0 }, concurrency: 1 });
    expect(await run.result()).toBe("psw");

    const text = await (await fetch(`http://127.0.0.1:${b.httpPort}/metrics`)).text();
    expect(sample(text, 'baton_handoffs_total{reason="shutdown"}')).toBe(1);
    expect(sample(text, 'baton_recovery_seconds_count{cause="handoff"}')).toBe(1);
    expect(sample(text, 'baton_steps_total{workflow="research",outcome="completed"}')).toBe(3);
    expect(
      sample(text, 'baton_run_executions_total{workflow="research",outcome="handed-off"}'),
    ).toBe(1);
    expect(sample(text, 'baton_drain_runs_total{outcome="handed-off"}')).toBe(1);
    expect(sample(text, "baton_shutdown_duration_seconds_count")).toBe(1);
    expect(sample(text, 'baton_runs{status="completed"}')).toBe(1);

    const details = (await (
      await fetch(`http://127.0.0.1:${b.httpPort}/api/runs/r1`)
    ).json()) as ApiRunDetails;
    expect(details.timeline.map((e) => e.name ?? e.kind)).toEqual([
      "created",
      "claimed",
      "plan",
      "search",
      "handoff",
      "claimed",
      "write",
      "completed",
    ]);
    expect(details.recoveries).toMatchObject([
      { cause: "handoff", fromWorker: a.id, toWorker: b.id },
    ]);

    const spans = exporter
      .getFinishedSpans()
      .map((s) => `${s.name} ${String(s.attributes["baton.outcome"])}`);
    expect(spans).toEqual([
      "baton.step plan completed",
      "baton.step search completed",
      "baton.run research handed-off",
      "baton.step write completed",
      "baton.run research completed",
    ]);
  } finally {
    await t.close();
  }
});

it("records a crash takeover from the lease's expiry", async () => {
  const t = await openTestBaton({ workflows: [research] });
  try {
    await t.baton.start(research, { topic: "y" }, { id: "r2" });
    expect(await t.baton.store.claimRuns("ghost", ["research"], 1, 100)).toHaveLength(1);
    const w = await t.startWorker({ http: { port: 0 }, concurrency: 1 });
    await waitFor(async () => (await t.baton.get("r2"))?.status === "completed");
    const text = await (await fetch(`http://127.0.0.1:${w.httpPort}/metrics`)).text();
    expect(sample(text, 'baton_recovery_seconds_count{cause="crash"}')).toBe(1);
    const details = (await (
      await fetch(`http://127.0.0.1:${w.httpPort}/api/runs/r2`)
    ).json()) as ApiRunDetails;
    expect(details.timeline.slice(0, 4).map((e) => `${e.source} ${e.kind} ${e.workerId}`)).toEqual([
      "event created null",
      "event claimed ghost",
      "event lease-expired ghost",
      `event takeover ${w.id}`,
    ]);
    expect(details.recoveries[0]?.recoveryMs).toBeGreaterThanOrEqual(0);
  } finally {
    await t.close();
  }
});
