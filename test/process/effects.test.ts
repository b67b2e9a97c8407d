/**
 * Effects under real SIGKILLs, against a fake external service run as its own process.
 *
 * The exactly-once checks (with `check`, a kill at each point of the effect's window) and
 * the stale owner refused through the fence run on each backend: they depend on the
 * store's intent and result records and on its fences. The checks without `check` and
 * with the outbox switched off exercise the runtime's decisions on the same records, so
 * they run on SQLite only, to keep the file's time down.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Baton } from "../../src/index.js";
import { payment } from "../fixtures/workflows.js";
import { backend as onlyBackend, describeEachBackend, type Backend } from "../support/backends.js";
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
/** Where the workers' execution logs go. */
let dir: ReturnType<typeof tempDir>;

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
});

afterAll(() => {
  service.kill("SIGTERM");
  dir.remove();
});

const callsOf = async (runId: string) =>
  ((await (await fetch(`${serviceUrl}/calls`)).json()) as Call[]).filter((c) => c.runId === runId);

type Target = { backend: Backend; store: string; baton: Baton };

/**
 * A Baton on a fresh store of `backend` for the tests of the enclosing block. The service
 * is shared by the whole file, so run ids carry the backend's name.
 */
function useStore(backend: Backend): Target {
  const target = { backend } as Target;
  beforeAll(async () => {
    target.store = await backend.newStoreUrl();
    target.baton = await Baton.open({ store: target.store, workflows: [payment] });
  });
  afterAll(async () => {
    await target.baton?.close();
    await backend.cleanup();
  });
  return target;
}

/**
 * Runs one payment on a worker that dies at `point` (a fault point inside the runtime, or
 * `during-call`: SIGKILLed by the test while the service holds the request), then lets a
 * fresh worker finish it.
 */
async function payThroughACrash(
  { backend, store, baton }: Target,
  point: string,
  check: boolean,
  extraEnv: Record<string, string> = {},
) {
  const runId =
    `${backend.name}-pay-${point}-${check ? "check" : "nocheck"}${extraEnv.BATON_UNSAFE_DISABLE_OUTBOX ? "-nooutbox" : ""}`.replace(
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

describeEachBackend("effects under SIGKILL", (backend) => {
  const target = useStore(backend);

  describe("an effect killed at each point of its window", () => {
    it.each(POINTS)(
      "with check, killed at %s: the service applied the key exactly once and was asked once",
      async (point) => {
        const { runId, receipt, calls, details } = await payThroughACrash(target, point, true);
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
  });

  describe("a stale owner", () => {
    it("is refused by the external service through the fence", async () => {
      const { baton, store } = target;
      const runId = `${backend.name}-stale-owner`;
      const workers = workerProcesses(store, dir.path);
      try {
        const a = await workers.start({ leaseMs: 800 });
        // A records the intent, then holds its request for 2 s (a request on its way): time
        // for the test to see the intent and stop A, even on a loaded machine. Once A is
        // continued, its overdue timer sends the request at once.
        const run = await baton.start(
          payment,
          { service: serviceUrl, check: true, delayMs: 0, holdMs: 2_000 },
          { id: runId },
        );
        await waitFor(async () => (await baton.get(runId))!.steps.some((s) => s.name === "charge"));
        a.child.kill("SIGSTOP");
        // The premise: A was stopped while it held its request.
        expect(await callsOf(runId)).toEqual([]);
        const b = await workers.start({ leaseMs: 800 });
        // B takes over (fence 2), finds the intent unsettled, and charges with fence 2.
        await waitFor(async () => (await callsOf(runId)).some((c) => c.fence === 2), 15_000);
        a.child.kill("SIGCONT");
        // A's request goes out with fence 1 and is refused.
        await waitFor(
          async () => (await callsOf(runId)).some((c) => c.outcome === "stale"),
          10_000,
        );
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
});

describe("effects under SIGKILL, without check or without the outbox (sqlite only)", () => {
  const sqlite = onlyBackend("sqlite");
  sqlite.use();
  const target = useStore(sqlite);

  it.each(POINTS)(
    "without check, killed at %s: never a different key, applied once",
    async (point) => {
      const { runId, receipt, calls } = await payThroughACrash(target, point, false);
      const key = `${runId}:1:charge`;
      expect(calls.every((c) => c.key === key)).toBe(true);
      expect(calls.filter((c) => c.outcome === "applied")).toHaveLength(1);
      expect(calls.length).toBeLessThanOrEqual(2);
      expect(receipt).toEqual({ receipt: expect.any(Number) as number });
    },
  );

  describe("with the outbox switched off", () => {
    it("a crash during the call makes check useless: the service is asked twice (what the intent prevents)", async () => {
      const { runId, calls } = await payThroughACrash(target, "during-call", true, {
        BATON_UNSAFE_DISABLE_OUTBOX: "1",
      });
      expect(calls.map((c) => [c.key, c.outcome])).toEqual([
        [`${runId}:1:charge`, "applied"],
        [`${runId}:1:charge`, "duplicate"],
      ]);
    });
  });
});
