import { describe, expect, it } from "vitest";
import { formatRunTimeline } from "../../src/cli/format-run.js";
import type { RunDetails } from "../../src/index.js";

describe("baton run <id> timeline", () => {
  it("shows intents, results, unknown-outcome resolutions and compensations in order", () => {
    const base = {
      attempts: 1,
      error: undefined,
      progress: undefined,
      fence: 2,
      workerId: "w2",
      startedAt: 1,
    };
    const run: RunDetails = {
      id: "r",
      workflow: "pay",
      version: 1,
      status: "compensated",
      input: { amount: 5 },
      output: undefined,
      error: { name: "TerminalError", message: "card declined" },
      priority: 0,
      fence: 2,
      leaseOwner: null,
      interruptions: 0,
      createdAt: 0,
      updatedAt: 9,
      completedAt: 9,
      steps: [
        {
          ...base,
          seq: 0,
          name: "charge",
          kind: "effect",
          status: "completed",
          output: { receipt: 7 },
          idempotencyKey: "r:0:charge",
          updatedAt: 4,
        },
        {
          ...base,
          seq: 1,
          name: "ship",
          kind: "effect",
          status: "pending",
          output: undefined,
          idempotencyKey: "r:1:ship",
          updatedAt: 5,
        },
        {
          ...base,
          seq: 1_000_000_000,
          name: "compensate:charge",
          kind: "compensation",
          status: "completed",
          output: undefined,
          idempotencyKey: "r:0:charge:compensate",
          updatedAt: 8,
        },
      ],
      events: [
        { id: 1, runId: "r", kind: "created", at: 0, workerId: null, fence: 0, detail: null },
        { id: 2, runId: "r", kind: "takeover", at: 3, workerId: "w2", fence: 2, detail: null },
        {
          id: 3,
          runId: "r",
          kind: "effect-resolved",
          at: 4,
          workerId: "w2",
          fence: 2,
          detail: JSON.stringify({
            seq: 0,
            name: "charge",
            idempotencyKey: "r:0:charge",
            resolution: "checked-done",
          }),
        },
        { id: 4, runId: "r", kind: "compensating", at: 6, workerId: "w2", fence: 2, detail: null },
        { id: 5, runId: "r", kind: "compensated", at: 9, workerId: "w2", fence: 2, detail: null },
      ],
    };
    const text = formatRunTimeline(run);
    expect(text).toContain("status compensated");
    expect(text).toContain("error  TerminalError: card declined");
    const timeline = text
      .split("timeline:\n")[1]!
      .split("\n")
      .map((l) => l.slice(14));
    expect(timeline).toEqual([
      "created      fence 0",
      "takeover   worker w2  fence 2",
      expect.stringContaining(
        'unknown outcome of "charge": check found it done: result recorded, not run again',
      ),
      '  #0 effect "charge" completed → {"receipt":7}  key r:0:charge  [fence 2]',
      '  #1 effect "ship" intent recorded, outcome not yet known  key r:1:ship  [fence 2]',
      "compensating worker w2  fence 2",
      '  #undo of #0 compensation "compensate:charge" completed  key r:0:charge:compensate  [fence 2]',
      "compensated worker w2  fence 2",
    ]);
  });
});
