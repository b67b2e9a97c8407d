import { describe, expect, it } from "vitest";
import { trace } from "@opentelemetry/api";
import { traceLogMixin } from "../../src/telemetry/log-fields.js";
import { setOutcome, withRunSpan, withStepSpan } from "../../src/telemetry/tracing.js";

// No SDK installed in this file's process (vitest runs each file in its own fork).
describe("tracing without an SDK", () => {
  it("runs the work, hands out non-recording spans and adds nothing to logs", async () => {
    const attrs = { runId: "r", workflow: "w", fence: 1, workerId: "x" };
    const value = await withRunSpan(attrs, async (runSpan) => {
      expect(runSpan.isRecording()).toBe(false);
      const inner = await withStepSpan({ ...attrs, step: "s", attempt: 1 }, (span) => {
        expect(span.isRecording()).toBe(false);
        expect(traceLogMixin()).toEqual({});
        return Promise.resolve(41);
      });
      setOutcome(runSpan, "completed");
      return inner + 1;
    });
    expect(value).toBe(42);
    await expect(
      withStepSpan({ ...attrs, step: "s", attempt: 2 }, () => Promise.reject(new Error("boom"))),
    ).rejects.toThrow("boom");
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});
