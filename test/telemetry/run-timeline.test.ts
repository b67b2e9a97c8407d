import { describe, expect, it } from "vitest";
import type { JournalEntry, RunEvent } from "../../src/store/store.js";
import { buildTimeline, findRecoveries } from "../../src/telemetry/run-timeline.js";

const COMPENSATION = 1_000_000_000;
let nextId = 1;

function event(
  kind: string,
  at: number,
  workerId: string | null,
  fence: number | null,
  detail: string | null = null,
): RunEvent {
  return { id: nextId++, runId: "r", kind: kind as RunEvent["kind"], at, workerId, fence, detail };
}

function entry(
  seq: number,
  name: string,
  kind: string,
  status: string,
  workerId: string,
  fence: number,
  startedAt: number | null,
  updatedAt: number,
  extra: Partial<JournalEntry> = {},
): JournalEntry {
  return {
    runId: "r",
    seq,
    name,
    kind: kind as JournalEntry["kind"],
    status: status as JournalEntry["status"],
    output: null,
    error: null,
    progress: null,
    attempts: status === "completed" || status === "failed" ? 1 : 0,
    idempotencyKey: null,
    fence,
    workerId,
    startedAt,
    updatedAt,
    ...extra,
  };
}

const line = (e: ReturnType<typeof buildTimeline>[number]) =>
  `${e.kind}${e.name ? ` ${e.name}` : ""} ${e.workerId ?? "-"} ${e.fence}`;

describe("buildTimeline", () => {
  it("tells a run handed off twice and then compensated, in order", () => {
    const events = [
      event("created", 0, null, 0),
      event("claimed", 10, "w-a", 1),
      event("handoff", 30, "w-a", 1),
      event("claimed", 31, "w-b", 2),
      event("handoff", 60, "w-b", 2),
      event("claimed", 61, "w-c", 3),
      event(
        "compensating",
        80,
        "w-c",
        3,
        JSON.stringify({ reason: "TerminalError: card declined" }),
      ),
      event("compensated", 95, "w-c", 3),
    ];
    const journal = [
      entry(0, "reserve", "effect", "completed", "w-a", 1, 11, 20, {
        idempotencyKey: "r:0:reserve",
      }),
      entry(1, "charge", "effect", "completed", "w-b", 2, 32, 50, { idempotencyKey: "r:1:charge" }),
      entry(2, "ship", "step", "failed", "w-c", 3, 62, 79, {
        error: JSON.stringify({ name: "TerminalError", message: "card declined" }),
      }),
      // Compensations run in reverse order; the first starts in the same millisecond as
      // the event that began compensating.
      entry(COMPENSATION + 1, "charge", "compensation", "completed", "w-c", 3, 80, 85),
      entry(COMPENSATION + 0, "reserve", "compensation", "completed", "w-c", 3, 85, 90),
    ];
    const timeline = buildTimeline(events, [...journal].reverse());
    expect(timeline.map(line)).toEqual([
      "created - 0",
      "claimed w-a 1",
      "effect reserve w-a 1",
      "handoff w-a 1",
      "claimed w-b 2",
      "effect charge w-b 2",
      "handoff w-b 2",
      "claimed w-c 3",
      "step ship w-c 3",
      "compensating w-c 3",
      "compensation charge w-c 3",
      "compensation reserve w-c 3",
      "compensated w-c 3",
    ]);
    expect(timeline.find((e) => e.kind === "compensating")?.detail).toEqual({
      reason: "TerminalError: card declined",
    });
    expect(timeline.find((e) => e.name === "ship")).toMatchObject({
      status: "failed",
      error: { name: "TerminalError", message: "card declined" },
      endedAt: 79,
      durationMs: 17,
    });
    expect(timeline.find((e) => e.name === "charge")?.idempotencyKey).toBe("r:1:charge");

    const recoveries = findRecoveries(timeline);
    expect(recoveries).toEqual([
      expect.objectContaining({
        cause: "handoff",
        interruptedAt: 30,
        claimedAt: 31,
        resumedAt: 32,
        claimMs: 1,
        recoveryMs: 2,
      }),
      expect.objectContaining({
        cause: "handoff",
        interruptedAt: 60,
        claimedAt: 61,
        resumedAt: 62,
        claimMs: 1,
        recoveryMs: 2,
      }),
    ]);
  });

  it("orders by ownership when clocks disagree or events share a millisecond", () => {
    const events = [
      event("created", 100, null, 0),
      event("claimed", 100, "w-a", 1),
      event("handoff", 100, "w-a", 1),
      // w-b's clock is behind w-a's: its claim reads earlier than the handoff it follows.
      event("claimed", 95, "w-b", 2),
      event("effect-resolved", 97, "w-b", null, "checked"), // no fence: w-b's, carried forward
      event("completed", 99, "w-b", 2),
    ];
    const journal = [
      entry(0, "a", "step", "completed", "w-a", 1, 100, 100),
      entry(1, "b", "effect", "completed", "w-b", 2, 96, 98),
      entry(2, "c", "sleep", "completed", "w-b", 2, null, 98),
    ];
    const timeline = buildTimeline(events, journal);
    expect(timeline.map(line)).toEqual([
      "created - 0",
      "claimed w-a 1",
      "step a w-a 1",
      "handoff w-a 1",
      "claimed w-b 2",
      "effect b w-b 2",
      "effect-resolved w-b 2",
      "sleep c w-b 2",
      "completed w-b 2",
    ]);
    expect(timeline.find((e) => e.kind === "effect-resolved")?.detail).toBe("checked");
  });

  it("uses a recorded lease expiry instead of inferring one, and measures the crash recovery", () => {
    const events = [
      event("created", 0, null, 0),
      event("claimed", 10, "w-a", 1),
      event("lease-expired", 10_010, "w-a", 1),
      event("takeover", 10_500, "w-b", 2),
      event("completed", 10_700, "w-b", 2),
    ];
    const journal = [
      entry(0, "plan", "step", "completed", "w-a", 1, 11, 20),
      entry(1, "search", "step", "completed", "w-b", 2, 10_520, 10_690),
    ];
    const timeline = buildTimeline(events, journal);
    expect(timeline.filter((e) => e.kind === "lease-expired").map((e) => e.source)).toEqual([
      "event",
    ]);
    expect(findRecoveries(timeline)).toEqual([
      {
        cause: "crash",
        fromWorker: "w-a",
        fromFence: 1,
        toWorker: "w-b",
        fence: 2,
        interruptedAt: 10_010,
        claimedAt: 10_500,
        resumedAt: 10_520,
        claimMs: 490,
        recoveryMs: 510,
      },
    ]);
  });

  it("does not count a wake-up from sleep or a first claim as a recovery", () => {
    const events = [
      event("created", 0, null, 0),
      event("claimed", 1, "w-a", 1),
      event("sleeping", 5, "w-a", 1),
      event("claimed", 1_000, "w-b", 2),
      event("cancelled", 1_010, null, 3),
    ];
    const journal = [entry(0, "nap", "sleep", "completed", "w-a", 1, null, 4)];
    const timeline = buildTimeline(events, journal);
    expect(timeline.map(line)).toEqual([
      "created - 0",
      "claimed w-a 1",
      "sleep nap w-a 1",
      "sleeping w-a 1",
      "claimed w-b 2",
      "cancelled - 3",
    ]);
    expect(findRecoveries(timeline)).toEqual([]);
  });
});
