import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Baton } from "../../src/index.js";
import { payment } from "../fixtures/workflows.js";
import { tempDir } from "../support/temp-dir.js";
import { waitFor } from "../support/wait-for.js";
import { workerProcesses } from "../support/worker-processes.js";

type Call = {
  key: string;
  runId: string;
  fence: number;
  outcome: "applied" | "duplicate" | "stale";
};

const SERVICE = fileURLToPath(new URL("../fixtures/payment-service.ts", import.meta.url));
let service: ChildProcess;
let serviceUrl: string;
let dir: ReturnType<typeof tempDir>;
let store: string;
let baton: Baton;

beforeAll(async () => {
  service = spawn(process.execPath, ["--import", "tsx", SERVICE], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve) =>
    createInterface({ input: service.stdout! }).once("line", (line) =>
      resolve((JSON.parse(line) as { port: number }).port),
    ),
  );
  serviceUrl = `http://127.0.0.1:${port}`;
  dir = tempDir();
  store = `sqlite:${join(dir.path, "baton.db")}`;
  baton = await Baton.open({ store, workflows: [payment] });
});

afterAll(async () => {
  service.kill("SIGTERM");
  await baton.close();
  dir.remove();
});

const callsOf = async (runId: string) =>
  ((await (await fetch(`${serviceUrl}/calls`)).json()) as Call[]).filter((c) => c.runId === runId);

/**
 * Runs one payment on a worker that dies at `point` (a fault point inside the runtime, or
 * `during-call`: SIGKILLed by the test while the service holds the request), then lets a
 * fresh worker finish it.
 */
async function payThroughACrash(
  point: string,
  check: boolean,
  extraEnv: Record<string, string> = {},
) {
  const runId =
    `pay-${point}-${check ? "check" : "nocheck"}${extraEnv.BATON_UNSAFE_DISABLE_OUTBOX ? "-nooutbox" : ""}`.replace(
      /:/g,
      "-",
    );
  const workers = workerProcesses(store, dir.path);
  try {
    const env = { ...extraEnv, ...(point === "during-call" ? {} : { BATON_FAULT_INJECT: point }) };
    const a = await workers.start({ leaseMs: 600, env });
    const run = await baton.start(
      payment,
      { service: serviceUrl, check, delayMs: point === "during-call" ? 2_000 : 0 },
      { id: runId },
    );
    if (point === "during-call") {
      await waitFor(async () => (await callsOf(runId)).length > 0);
      a.child.kill("SIGKILL");
    }
    expect(await a.exited).toBe("SIGKILL");
    await workers.start({ leaseMs: 600 });
    const receipt = await run.result({ timeoutMs: 20_000 });
    return { runId, receipt, calls: await callsOf(runId), details: (await baton.get(runId))! };
  } finally {
    await workers.killAll();
  }
}

const POINTS = [
  "effect:before-intent",
  "effect:after-intent",
  "during-call",
  "effect:after-run",
  "effect:after-result",
];

describe("an effect under SIGKILL at each point of its window", () => {
  it.each(POINTS)(
    "with check, killed at %s: the service applied the key exactly once and was asked once",
    async (point) => {
      const { runId, receipt, calls, details } = await payThroughACrash(point, true);
      const key = `${runId}:1:charge`;
      expect(calls.map((c) => [c.key, c.outcome])).toEqual([[key, "applied"]]);
      expect(receipt).toEqual({ receipt: expect.any(Number) as number });
      const charge = details.steps.find((s) => s.name === "charge")!;
      expect(charge).toMatchObject({ status: "completed", output: receipt, idempotencyKey: key });
      const resolutions = details.events
        .filter((e) => e.kind === "effect-resolved")
        .map((e) => (JSON.parse(e.detail!) as { resolution: string }).resolution);
      // An intent without a result was found and settled by check; otherwise there was nothing to settle.
      const unknown = ["effect:after-intent", "during-call", "effect:after-run"].includes(point);
      expect(resolutions).toEqual(
        unknown ? [point === "effect:after-intent" ? "checked-not-done" : "checked-done"] : [],
      );
    },
  );

  it.each(POINTS)(
    "without check, killed at %s: never a different key, applied once",
    async (point) => {
      const { runId, receipt, calls } = await payThroughACrash(point, false);
      const key = `${runId}:1:charge`;
      expect(calls.every((c) => c.key === key)).toBe(true);
      expect(calls.filter((c) => c.outcome === "applied")).toHaveLength(1);
      expect(calls.length).toBeLessThanOrEqual(2);
      expect(receipt).toEqual({ receipt: expect.any(Number) as number });
    },
  );
});

describe("with the outbox switched off", () => {
  it("a crash during the call makes check useless: the service is asked twice (what the intent prevents)", async () => {
    const { runId, calls } = await payThroughACrash("during-call", true, {
      BATON_UNSAFE_DISABLE_OUTBOX: "1",
    });
    expect(calls.map((c) => [c.key, c.outcome])).toEqual([
      [`${runId}:1:charge`, "applied"],
      [`${runId}:1:charge`, "duplicate"],
    ]);
  });
});

describe("a stale owner", () => {
  it("is refused by the external service through the fence", async () => {
    const runId = "stale-owner";
    const workers = workerProcesses(store, dir.path);
    try {
      const a = await workers.start({ leaseMs: 800 });
      // A records the intent, then holds its request for 600 ms (a request on its way).
      const run = await baton.start(
        payment,
        { service: serviceUrl, check: true, delayMs: 0, holdMs: 600 },
        { id: runId },
      );
      await waitFor(async () => (await baton.get(runId))!.steps.some((s) => s.name === "charge"));
      a.child.kill("SIGSTOP");
      const b = await workers.start({ leaseMs: 800 });
      // B takes over (fence 2), finds the intent unsettled, and charges with fence 2.
      await waitFor(async () => (await callsOf(runId)).some((c) => c.fence === 2), 15_000);
      a.child.kill("SIGCONT");
      // A's request goes out with fence 1 and is refused.
      await waitFor(async () => (await callsOf(runId)).some((c) => c.outcome === "stale"), 10_000);
      expect(await run.result({ timeoutMs: 15_000 })).toEqual({
        receipt: expect.any(Number) as number,
      });
      const calls = await callsOf(runId);
      expect(calls.map((c) => [c.fence, c.outcome])).toEqual([
        [2, "applied"],
        [1, "stale"],
      ]);
      const details = (await baton.get(runId))!;
      expect(details.steps.find((s) => s.name === "charge")).toMatchObject({
        status: "completed",
        workerId: b.workerId,
        fence: 2,
      });
    } finally {
      await workers.killAll();
    }
  });
});
