import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { SpanStatusCode, context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace";
import { pino } from "pino";
import { Writable } from "node:stream";
import { traceLogMixin } from "../../src/telemetry/log-fields.js";
import {
  ATTR,
  addSpanEvent,
  setOutcome,
  withRunSpan,
  withStepSpan,
} from "../../src/telemetry/tracing.js";
import { LeaseLostError } from "../../src/workflow/errors.js";

// What an application does to see Baton's spans: an SDK with a context manager.
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});
beforeEach(() => exporter.reset());

const run = { runId: "research-42", workflow: "research", fence: 3, workerId: "w-b" };
const step = (name: string, attempt = 1) => ({ ...run, step: name, seq: 0, attempt, kind: "step" });

function spans(): Map<string, ReadableSpan> {
  return new Map(exporter.getFinishedSpans().map((s) => [s.name, s]));
}
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
const tick = () => new Promise((r) => setTimeout(r, 1));

describe("withRunSpan / withStepSpan", () => {
  it("nests a run attempt, its steps and the spans user code starts inside a step", async () => {
    const result = await withRunSpan({ ...run, takeover: true, interruptions: 2 }, async () => {
      const plan = await withStepSpan(step("plan"), async () => {
        await tick(); // the context survives an await
        const user = trace.getTracer("app").startSpan("llm.complete");
        user.end();
        return "plan";
      });
      await withStepSpan({ ...step("search-0"), seq: 1 }, async () => {
        await tick();
        addSpanEvent("progress saved", { records: 500 });
      });
      return plan;
    });
    expect(result).toBe("plan");

    const byName = spans();
    const runSpan = byName.get("baton.run research")!;
    const plan = byName.get("baton.step plan")!;
    const search = byName.get("baton.step search-0")!;
    const user = byName.get("llm.complete")!;
    expect([runSpan, plan, search, user].every(Boolean)).toBe(true);
    expect(parentOf(runSpan)).toBeUndefined();
    expect(parentOf(plan)).toBe(runSpan.spanContext().spanId);
    expect(parentOf(search)).toBe(runSpan.spanContext().spanId);
    expect(parentOf(user)).toBe(plan.spanContext().spanId);
    expect(new Set([plan, search, user].map((s) => s.spanContext().traceId))).toEqual(
      new Set([runSpan.spanContext().traceId]),
    );

    expect(runSpan.attributes).toMatchObject({
      [ATTR.runId]: "research-42",
      [ATTR.workflow]: "research",
      [ATTR.fence]: 3,
      [ATTR.workerId]: "w-b",
      [ATTR.takeover]: true,
      [ATTR.interruptions]: 2,
      [ATTR.outcome]: "completed",
    });
    expect(plan.attributes).toMatchObject({
      "baton.run_id": "research-42",
      "baton.workflow": "research",
      "baton.step": "plan",
      "baton.step.seq": 0,
      "baton.step.kind": "step",
      "baton.attempt": 1,
      "baton.fence": 3,
      "baton.worker_id": "w-b",
      "baton.outcome": "completed",
    });
    expect(search.attributes["baton.step.seq"]).toBe(1);
    expect(search.events.map((e) => [e.name, e.attributes])).toEqual([
      ["progress saved", { records: 500 }],
    ]);
    expect(plan.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("starts each run attempt as a new trace, whatever span is active around it", async () => {
    const outer = trace.getTracer("app").startSpan("http.request");
    await context.with(trace.setSpan(context.active(), outer), () =>
      withRunSpan(run, () => Promise.resolve()),
    );
    outer.end();
    const runSpan = spans().get("baton.run research")!;
    expect(parentOf(runSpan)).toBeUndefined();
    expect(runSpan.spanContext().traceId).not.toBe(outer.spanContext().traceId);
  });

  it("records a failed step attempt as an exception with an error status, and rethrows", async () => {
    const failure = new Error("search API answered 503");
    await expect(withStepSpan(step("search-0", 2), () => Promise.reject(failure))).rejects.toBe(
      failure,
    );
    const span = spans().get("baton.step search-0")!;
    expect(span.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: "Error: search API answered 503",
    });
    expect(span.attributes["baton.outcome"]).toBe("failed");
    expect(span.attributes["baton.attempt"]).toBe(2);
    const exception = span.events.find((e) => e.name === "exception");
    expect(exception?.attributes).toMatchObject({
      "exception.type": "Error",
      "exception.message": "search API answered 503",
    });
  });

  it("marks an interruption without an error status: interruptions are not failures", async () => {
    const lost = new LeaseLostError("run research-42: lease with fence 3 was not renewed");
    await expect(withStepSpan(step("plan"), () => Promise.reject(lost))).rejects.toBe(lost);
    // A caller that knows better (its own signal aborted) says so for any error.
    const aborted = new DOMException("aborted", "AbortError");
    await expect(
      withStepSpan(step("write"), () => Promise.reject(aborted), { interrupted: () => true }),
    ).rejects.toBe(aborted);
    for (const name of ["baton.step plan", "baton.step write"]) {
      const span = spans().get(name)!;
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expect(span.attributes["baton.outcome"]).toBe("interrupted");
      expect(span.events.map((e) => e.name)).toEqual(["interrupted"]);
    }
  });

  it("lets the caller set a run's outcome; failed sets the error status", async () => {
    await withRunSpan(run, (span) => {
      setOutcome(span, "handed-off");
      return Promise.resolve();
    });
    expect(spans().get("baton.run research")!.attributes["baton.outcome"]).toBe("handed-off");
    exporter.reset();
    await withRunSpan(run, (span) => {
      setOutcome(span, "failed", new Error("TerminalError: card declined"));
      return Promise.resolve();
    });
    const failed = spans().get("baton.run research")!;
    expect(failed.attributes["baton.outcome"]).toBe("failed");
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
  });
});

describe("traceLogMixin", () => {
  it("adds the active span's ids to every log line written inside it", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const log = pino({ mixin: traceLogMixin }, sink).child({ runId: "research-42", fence: 3 });
    log.info("outside");
    await withStepSpan(step("plan"), async () => {
      await tick();
      log.info("inside");
    });
    const span = spans().get("baton.step plan")!;
    expect(lines[0]).not.toHaveProperty("trace_id");
    expect(lines[1]).toMatchObject({
      msg: "inside",
      runId: "research-42",
      fence: 3,
      trace_id: span.spanContext().traceId,
      span_id: span.spanContext().spanId,
      trace_flags: "01",
    });
  });
});
