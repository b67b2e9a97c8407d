import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apiRoutes,
  type ApiOverview,
  type ApiRunDetails,
  type ApiRunList,
  type ApiWorkerList,
} from "../../src/http/api-routes.js";
import { ManagementServer } from "../../src/http/management-server.js";
import { COMPENSATION_SEQ_BASE, type Lease } from "../../src/store/store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { TimelineEntry } from "../../src/telemetry/run-timeline.js";
import { tempDir } from "../support/temp-dir.js";

const RUN = "research-42";
const WORKFLOW = "research";
const dir = tempDir();
const store = new SqliteStore({ path: join(dir.path, "baton.db") });
let server: ManagementServer;
let call: (path: string, init?: RequestInit) => Promise<Response>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function claim(workerId: string, leaseMs = 60_000): Promise<Lease & { takeover: boolean }> {
  const [run] = await store.claimRuns(workerId, [WORKFLOW], 1, leaseMs);
  if (!run) throw new Error(`${workerId} claimed nothing`);
  return { runId: run.id, fence: run.fence, workerId, takeover: run.takeover };
}

async function completeStep(lease: Lease, seq: number, name: string, output: unknown) {
  const startedAt = Date.now();
  await sleep(2);
  expect(
    await store.writeStep(lease, {
      seq,
      name,
      kind: "step",
      status: "completed",
      output: JSON.stringify(output),
      attempts: 1,
      startedAt,
    }),
  ).toBe(true);
}

/**
 * The story: worker A claims the run and plans; a rolling deploy hands it off to B, which
 * searches once and is itself rolled, handing it to C; C saves progress in its search and
 * stalls past its lease (SIGSTOP); D takes it over, finishes the search and the run; C
 * wakes up and its write is refused by the fence.
 */
async function scriptRun(): Promise<void> {
  for (const id of ["w-a", "w-b", "w-c", "w-d"])
    await store.registerWorker({ id, state: "running", host: "node-1", pid: 100, concurrency: 4 });
  await store.createRun({
    id: RUN,
    workflow: WORKFLOW,
    version: 1,
    input: JSON.stringify({ topic: "fusion" }),
    priority: 0,
  });

  const a = await claim("w-a");
  await completeStep(a, 0, "plan", { queries: ["tokamak", "stellarator"] });
  await store.setWorkerState("w-a", "draining");
  expect(await store.releaseRun(a, "handoff")).toBe(true);
  await store.setWorkerState("w-a", "stopped");
  await store.saveShutdownReport(
    "w-a",
    JSON.stringify({ workerId: "w-a", runs: { inFlight: 1, handedOff: 1 }, exitCode: 0 }),
  );

  await sleep(3);
  const b = await claim("w-b");
  await completeStep(b, 1, "search-0", ["ITER"]);
  expect(await store.releaseRun(b, "handoff")).toBe(true);
  await store.setWorkerState("w-b", "stopped");

  await sleep(3);
  const c = await claim("w-c", 1); // a lease that expires at once: C is about to stall
  expect(
    await store.writeStep(c, {
      seq: 2,
      name: "search-1",
      kind: "step",
      status: "running",
      progress: JSON.stringify({ page: 3 }),
      attempts: 0,
      startedAt: Date.now(),
    }),
  ).toBe(true);

  await sleep(5);
  const d = await claim("w-d");
  expect(d.takeover).toBe(true);

  // C wakes up: the fence refuses its write; it leaves a trace and stops.
  expect(
    await store.writeStep(c, {
      seq: 2,
      name: "search-1",
      kind: "step",
      status: "completed",
      output: JSON.stringify(["W7-X (stale)"]),
      attempts: 1,
    }),
  ).toBe(false);
  await store.appendEvent({
    runId: RUN,
    kind: "lease-lost",
    workerId: "w-c",
    fence: c.fence,
    detail: "run research-42: the store refused a write with fence 3",
  });

  await completeStep(d, 2, "search-1", ["W7-X"]);
  expect(await store.completeRun(d, JSON.stringify({ post: "p-1" }))).toBe(true);
}

beforeAll(async () => {
  await scriptRun();
  for (let i = 0; i < 5; i++) {
    await store.createRun({
      id: `billing-${i}`,
      workflow: "billing",
      version: 2,
      input: JSON.stringify({ i }),
      priority: 0,
    });
    await sleep(2); // distinct creation times, for a stable page order
  }
  server = new ManagementServer(
    { ready: () => true, drain: () => {} },
    { port: 0, routes: apiRoutes(store, { defaultLimit: 2 }) },
  );
  const { port } = await server.listen();
  call = (path, init) => fetch(`http://127.0.0.1:${port}${path}`, init);
});

afterAll(async () => {
  await server?.close();
  await store.close();
  dir.remove();
});

async function get<T>(path: string): Promise<T> {
  const res = await call(path);
  expect(res.status, `${path}: ${res.status}`).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/json");
  return (await res.json()) as T;
}

describe("GET /api/runs/:id", () => {
  it("tells a run's whole story in order: claims, steps, two handoffs, a takeover", async () => {
    const details = await get<ApiRunDetails>(`/api/runs/${RUN}`);
    expect(details.run).toMatchObject({
      id: RUN,
      workflow: WORKFLOW,
      status: "completed",
      fence: 4,
      interruptions: 2,
      input: { topic: "fusion" },
      output: { post: "p-1" },
      error: null,
      orphaned: false,
    });

    // A lease expiry is an event when the store records it, else derived from the takeover.
    const source = (e: TimelineEntry) => (e.source === "journal" ? "journal" : "event");
    const story = details.timeline.map(
      (e) => `${source(e)} ${e.kind}${e.name ? ` ${e.name}` : ""} ${e.workerId ?? "-"} ${e.fence}`,
    );
    expect(story).toEqual([
      "event created - 0",
      "event claimed w-a 1",
      "journal step plan w-a 1",
      "event handoff w-a 1",
      "event claimed w-b 2",
      "journal step search-0 w-b 2",
      "event handoff w-b 2",
      "event claimed w-c 3",
      "event lease-expired w-c 3",
      "event takeover w-d 4",
      "event lease-lost w-c 3",
      "journal step search-1 w-d 4",
      "event completed w-d 4",
    ]);
    const expiry = details.timeline.find((e) => e.kind === "lease-expired")!;
    const takeover = details.timeline.find((e) => e.kind === "takeover")!;
    expect(expiry.at).toBeLessThanOrEqual(takeover.at);
    const [lostEvent] = details.timeline.filter((e) => e.kind === "lease-lost");
    expect(lostEvent?.detail).toBe("run research-42: the store refused a write with fence 3");
    const searched = details.timeline.find((e) => e.name === "search-1");
    expect(searched).toMatchObject({ status: "completed", attempts: 1, seq: 2 });
    expect(searched?.durationMs).toBeGreaterThanOrEqual(1);

    expect(details.journal[0]).toMatchObject({ progress: null, error: null, idempotencyKey: null });
    // The journal, decoded: the stale write never landed.
    expect(
      details.journal.map((s) => [s.seq, s.name, s.status, s.output, s.workerId, s.fence]),
    ).toEqual([
      [0, "plan", "completed", { queries: ["tokamak", "stellarator"] }, "w-a", 1],
      [1, "search-0", "completed", ["ITER"], "w-b", 2],
      [2, "search-1", "completed", ["W7-X"], "w-d", 4],
    ]);
  });

  it("measures each recovery: two handoffs, then a crash takeover", async () => {
    const { recoveries, timeline } = await get<ApiRunDetails>(`/api/runs/${RUN}`);
    expect(
      recoveries.map((r) => [r.cause, r.fromWorker, r.fromFence, r.toWorker, r.fence]),
    ).toEqual([
      ["handoff", "w-a", 1, "w-b", 2],
      ["handoff", "w-b", 2, "w-c", 3],
      ["crash", "w-c", 3, "w-d", 4],
    ]);
    const at = (kind: string, workerId: string) =>
      timeline.find((e) => e.kind === kind && e.workerId === workerId)!.at;
    const [first, second, crash] = recoveries;
    expect(first).toMatchObject({
      interruptedAt: at("handoff", "w-a"),
      claimedAt: at("claimed", "w-b"),
      resumedAt: timeline.find((e) => e.name === "search-0")!.at,
    });
    expect(first!.claimMs).toBeGreaterThanOrEqual(2);
    expect(first!.recoveryMs).toBeGreaterThanOrEqual(first!.claimMs!);
    // C's own start of search-1 was overwritten by D's: no step of C's is left to show.
    expect(second).toMatchObject({
      claimedAt: at("claimed", "w-c"),
      resumedAt: null,
      recoveryMs: null,
    });
    expect(crash!.resumedAt).toBeGreaterThanOrEqual(crash!.claimedAt);
    const expiry = timeline.find((e) => e.kind === "lease-expired")!;
    if (expiry.source === "derived") {
      // The store did not record when C's lease expired, only the takeover it allowed.
      expect(crash).toMatchObject({ interruptedAt: null, claimMs: null, recoveryMs: null });
    } else {
      expect(crash).toMatchObject({ interruptedAt: expiry.at });
      expect(crash!.recoveryMs).toBe(crash!.resumedAt! - expiry.at);
    }
  });

  it("answers 404 for an unknown run, and decodes ids from the path", async () => {
    const res = await call("/api/runs/no-such-run");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'no run with id "no-such-run"' });
    expect((await call("/api/runs/")).status).toBe(404);
    expect((await call(`/api/runs/${encodeURIComponent("billing-0")}`)).status).toBe(200);
  });
});

describe("GET /api/runs", () => {
  it("lists runs newest first, one page at a time", async () => {
    const first = await get<ApiRunList>("/api/runs");
    expect(first.runs.map((r) => r.id)).toEqual(["billing-4", "billing-3"]);
    expect(first.next).toBe("billing-3");
    expect(first.runs[0]).not.toHaveProperty("input"); // pages stay light
    const second = await get<ApiRunList>(`/api/runs?before=${first.next}&limit=3`);
    expect(second.runs.map((r) => r.id)).toEqual(["billing-2", "billing-1", "billing-0"]);
    const last = await get<ApiRunList>(`/api/runs?before=billing-0&limit=3`);
    expect(last.runs.map((r) => r.id)).toEqual([RUN]);
    expect(last.next).toBeNull();
  });

  it("filters by status and workflow", async () => {
    const completed = await get<ApiRunList>("/api/runs?status=completed");
    expect(completed.runs.map((r) => r.id)).toEqual([RUN]);
    expect(completed.runs[0]).toMatchObject({ interruptions: 2, fence: 4, leaseOwner: null });
    const research = await get<ApiRunList>(`/api/runs?workflow=${WORKFLOW}&limit=10`);
    expect(research.runs.map((r) => r.id)).toEqual([RUN]);
    const queuedBilling = await get<ApiRunList>(
      "/api/runs?workflow=billing&status=queued&limit=10",
    );
    expect(queuedBilling.runs).toHaveLength(5);
  });

  it("refuses a bad query with the reason", async () => {
    for (const query of ["status=done", "limit=0", "limit=100000", "limit=ten", "stauts=queued"]) {
      const res = await call(`/api/runs?${query}`);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/query/);
    }
  });
});

describe("GET /api/workers", () => {
  it("lists workers with their state, heartbeat age and last shutdown report", async () => {
    const { workers, now } = await get<ApiWorkerList>("/api/workers?limit=10");
    expect(typeof now).toBe("number");
    const byId = new Map(workers.map((w) => [w.id, w]));
    expect(byId.get("w-a")).toMatchObject({
      state: "stopped",
      host: "node-1",
      lastShutdown: {
        report: { workerId: "w-a", runs: { inFlight: 1, handedOff: 1 }, exitCode: 0 },
      },
    });
    expect(byId.get("w-b")).toMatchObject({ state: "stopped", lastShutdown: null });
    expect(byId.get("w-d")?.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
    const stopped = await get<ApiWorkerList>("/api/workers?state=stopped&limit=10");
    expect(stopped.workers.map((w) => w.id).sort()).toEqual(["w-a", "w-b"]);
    expect((await call("/api/workers?state=gone")).status).toBe(400);
  });
});

describe("GET /api/overview", () => {
  it("counts runs by status, orphans and workers by state", async () => {
    const overview = await get<ApiOverview>("/api/overview");
    expect(overview.runs).toEqual({
      queued: 5,
      running: 0,
      sleeping: 0,
      completed: 1,
      failed: 0,
      cancelled: 0,
      compensating: 0,
      compensated: 0,
    });
    expect(overview.orphaned).toBe(0);
    expect(overview.workers).toEqual({ starting: 0, running: 2, draining: 0, stopped: 2 });
  });
});

describe("access", () => {
  it("opens the read routes on loopback and asks for the token on other addresses", async () => {
    const exposed = new ManagementServer(
      { ready: () => true, drain: () => {} },
      { port: 0, host: "0.0.0.0", token: "s3cret", routes: apiRoutes(store) },
    );
    const { port } = await exposed.listen();
    try {
      const url = `http://127.0.0.1:${port}/api/runs/${RUN}`;
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: { Authorization: "Bearer s3cret" } })).status).toBe(200);
    } finally {
      await exposed.close();
    }
    expect(apiRoutes(store).every((r) => r.access === "read" && r.method === "GET")).toBe(true);
  });

  it("tells the story of a run handed off twice and then compensated, in order", async () => {
    const id = "trip-7";
    await store.createRun({ id, workflow: WORKFLOW, version: 1, input: "{}", priority: 0 });
    const effect = (lease: Lease, status: "pending" | "completed", output?: unknown) =>
      store.writeStep(lease, {
        seq: 0,
        name: "book",
        kind: "effect",
        status,
        attempts: status === "pending" ? 0 : 1,
        idempotencyKey: `${id}:0:book`,
        ...(output === undefined ? {} : { output: JSON.stringify(output) }),
      });
    const a = await claim("w-a");
    expect(await effect(a, "pending")).toBe(true);
    expect(await effect(a, "completed", { booking: 1 })).toBe(true);
    expect(await store.releaseRun(a, "handoff")).toBe(true);
    await sleep(3);
    const b = await claim("w-b");
    expect(await store.releaseRun(b, "handoff")).toBe(true);
    await sleep(3);
    const c = await claim("w-c");
    await completeStep(c, 1, "pay", "declined");
    expect(
      await store.beginCompensation(
        c,
        JSON.stringify({ name: "TerminalError", message: "card declined" }),
      ),
    ).toBe(true);
    expect(
      await store.writeStep(c, {
        seq: COMPENSATION_SEQ_BASE,
        name: "compensate:book",
        kind: "compensation",
        status: "completed",
        attempts: 1,
        idempotencyKey: `${id}:0:book:compensate`,
      }),
    ).toBe(true);
    expect(await store.markCompensated(c)).toBe(true);

    const details = await get<ApiRunDetails>(`/api/runs/${id}`);
    expect(details.run).toMatchObject({
      status: "compensated",
      interruptions: 2,
      error: { name: "TerminalError" },
    });
    const source = (e: TimelineEntry) => (e.source === "journal" ? "journal" : "event");
    expect(
      details.timeline.map(
        (e) =>
          `${source(e)} ${e.kind}${e.name ? ` ${e.name}` : ""} ${e.workerId ?? "-"} ${e.fence}`,
      ),
    ).toEqual([
      "event created - 0",
      "event claimed w-a 1",
      "journal effect book w-a 1",
      "event handoff w-a 1",
      "event claimed w-b 2",
      "event handoff w-b 2",
      "event claimed w-c 3",
      "journal step pay w-c 3",
      "event compensating w-c 3",
      "journal compensation compensate:book w-c 3",
      "event compensated w-c 3",
    ]);
    expect(details.journal.map((s) => [s.name, s.idempotencyKey])).toEqual([
      ["book", `${id}:0:book`],
      ["pay", null],
      ["compensate:book", `${id}:0:book:compensate`],
    ]);
  });
});
