/**
 * The store conformance suite: what every backend must do, written against the `Store`
 * interface only, so a new backend runs through it unchanged. Each backend's test file
 * calls `describeStoreConformance` with a factory that opens a fresh, empty store.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Lease, NewRun, Store } from "../../src/store/store.js";

export type OpenedStore = {
  store: Store;
  /** A second, independent handle on the same database (another process, in effect). */
  openPeer(): Promise<Store>;
  cleanup(): Promise<void>;
};

const WF = "wf";
const newRun = (id: string, extra: Partial<NewRun> = {}): NewRun => ({
  id,
  workflow: WF,
  version: 1,
  input: JSON.stringify({ id }),
  priority: 0,
  ...extra,
});

export function describeStoreConformance(label: string, open: () => Promise<OpenedStore>): void {
  describe(`store conformance: ${label}`, () => {
    let opened: OpenedStore;
    let store: Store;
    const peers: Store[] = [];
    const peer = async () => {
      const p = await opened.openPeer();
      peers.push(p);
      return p;
    };
    const claimOne = async (workerId = "w1", leaseMs = 10_000) => {
      const [run] = await store.claimRuns(workerId, [WF], 1, leaseMs);
      if (!run) throw new Error("nothing claimed");
      return { run, lease: { runId: run.id, fence: run.fence, workerId } satisfies Lease };
    };

    beforeEach(async () => {
      opened = await open();
      store = opened.store;
    });
    afterEach(async () => {
      for (const p of peers.splice(0)) await p.close();
      await opened.cleanup();
    });

    describe("runs", () => {
      it("creates a run once per id and returns the stored one on a repeat", async () => {
        const first = await store.createRun(newRun("r1"));
        expect(first.created).toBe(true);
        expect(first.run).toMatchObject({
          id: "r1",
          status: "queued",
          fence: 0,
          interruptions: 0,
          input: '{"id":"r1"}',
        });
        const again = await store.createRun(newRun("r1", { input: '"other"' }));
        expect(again.created).toBe(false);
        expect(again.run.input).toBe('{"id":"r1"}');
        expect((await store.listRuns()).length).toBe(1);
      });

      it("lists newest first, filters by status and workflow, pages by id, counts by status", async () => {
        for (const id of ["a", "b", "c"]) {
          await store.createRun(newRun(id, id === "c" ? { workflow: "other" } : {}));
          await sleep(3);
        }
        expect((await store.listRuns()).map((r) => r.id)).toEqual(["c", "b", "a"]);
        expect((await store.listRuns({ workflow: WF })).map((r) => r.id)).toEqual(["b", "a"]);
        expect((await store.listRuns({ limit: 1, before: "c" })).map((r) => r.id)).toEqual(["b"]);
        await store.cancelRun("a");
        expect((await store.listRuns({ status: "cancelled" })).map((r) => r.id)).toEqual(["a"]);
        expect(await store.countRuns()).toEqual({ queued: 2, cancelled: 1 });
        expect(await store.getRun("missing")).toBeUndefined();
      });
    });

    describe("claims and leases", () => {
      it("claims in order: priority, then resumed runs, then age; bumps the fence", async () => {
        await store.createRun(newRun("old"));
        await sleep(3);
        await store.createRun(newRun("new"));
        await sleep(3);
        await store.createRun(newRun("urgent", { priority: 5 }));
        await sleep(3);
        await store.createRun(newRun("handed"));
        const { lease } = await (async () => {
          const [r] = await store.claimRuns("w0", [WF], 1, 10_000);
          return { lease: { runId: r!.id, fence: r!.fence, workerId: "w0" } };
        })();
        expect(lease.runId).toBe("urgent");
        // hand "urgent" off: it stays first by priority; make a resumed run of "handed" too
        const handed = (await store.claimRuns("w0", [WF], 10, 10_000)).map((r) => r.id);
        expect(handed).toEqual(["old", "new", "handed"]);
        const handedRun = (await store.getRun("handed"))!;
        expect(
          await store.releaseRun(
            { runId: "handed", fence: handedRun.fence, workerId: "w0" },
            "handoff",
          ),
        ).toBe(true);
        const oldRun = (await store.getRun("old"))!;
        expect(
          await store.releaseRun({ runId: "old", fence: oldRun.fence, workerId: "w0" }, "retry"),
        ).toBe(true);
        await store.createRun(newRun("newest"));
        const order = (await store.claimRuns("w1", [WF], 10, 10_000)).map((r) => [r.id, r.fence]);
        expect(order).toEqual([
          ["old", 2],
          ["handed", 2],
          ["newest", 1],
        ]);
      });

      it("claims only the given workflows, only up to the limit, only runs that are due", async () => {
        await store.createRun(newRun("x", { workflow: "other" }));
        await store.createRun(newRun("y"));
        await store.createRun(newRun("z"));
        expect(await store.claimRuns("w1", [WF], 0, 10_000)).toEqual([]);
        expect((await store.claimRuns("w1", [WF], 1, 10_000)).map((r) => r.id)).toEqual(["y"]);
        const { lease } = { lease: { runId: "y", fence: 1, workerId: "w1" } };
        expect(await store.releaseRun(lease, "sleep", 60_000)).toBe(true);
        expect((await store.getRun("y"))!.status).toBe("sleeping");
        expect((await store.claimRuns("w1", [WF], 10, 10_000)).map((r) => r.id)).toEqual(["z"]);
        expect(await store.claimRuns("w1", ["nothing"], 10, 10_000)).toEqual([]);
      });

      it("takes over a run whose lease expired, with a new fence, and flags it", async () => {
        await store.createRun(newRun("r"));
        const { run } = await claimOne("w1", 60);
        expect(run.takeover).toBe(false);
        expect(await store.claimRuns("w2", [WF], 1, 10_000)).toEqual([]);
        await sleep(120);
        const [taken] = await store.claimRuns("w2", [WF], 1, 10_000);
        expect(taken).toMatchObject({
          id: "r",
          takeover: true,
          fence: run.fence + 1,
          leaseOwner: "w2",
        });
        // The expiry that allowed the takeover is on the timeline, at the old lease's end.
        const events = await store.listEvents("r");
        expect(events.map((e) => [e.kind, e.workerId, e.fence])).toEqual([
          ["created", null, 0],
          ["claimed", "w1", 1],
          ["lease-expired", "w1", 1],
          ["takeover", "w2", 2],
        ]);
        expect(events[2]!.at).toBe(run.leaseExpiresAt);
        expect(taken!.resumedFrom).toEqual({ cause: "crash", msAgo: expect.any(Number) as number });
      });

      it("renews only the leases named and still held, and reports a lost one", async () => {
        await store.createRun(newRun("a"));
        await store.createRun(newRun("b"));
        const claimed = await store.claimRuns("w1", [WF], 2, 300);
        const leases = claimed.map((r) => ({ runId: r.id, fence: r.fence, workerId: "w1" }));
        const held = await store.renewLeases("w1", [leases[0]!], 10_000);
        expect(held).toEqual([{ runId: "a", fence: 1 }]);
        await sleep(400);
        // "b" was not renewed and expired; "a" was
        expect((await store.claimRuns("w2", [WF], 2, 10_000)).map((r) => r.id)).toEqual(["b"]);
        expect(await store.renewLeases("w1", leases, 10_000)).toEqual([{ runId: "a", fence: 1 }]);
        expect(await store.renewLeases("w1", [], 10_000)).toEqual([]);
      });

      it("never gives one run to two concurrent claimers", async () => {
        const other = await peer();
        for (let i = 0; i < 40; i++) await store.createRun(newRun(`c${i}`));
        const results = await Promise.all([
          ...Array.from({ length: 4 }, (_, i) => store.claimRuns(`a${i}`, [WF], 7, 10_000)),
          ...Array.from({ length: 4 }, (_, i) => other.claimRuns(`b${i}`, [WF], 7, 10_000)),
        ]);
        const ids = results.flat().map((r) => r.id);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBe(40);
      });
    });

    describe("fenced writes", () => {
      it("records steps, keeps progress until the step ends, never changes a final entry", async () => {
        await store.createRun(newRun("r"));
        const { lease } = await claimOne();
        expect(
          await store.writeStep(lease, {
            seq: 0,
            name: "s",
            kind: "step",
            status: "running",
            progress: '{"n":1}',
            attempts: 0,
            startedAt: 5,
          }),
        ).toBe(true);
        expect(
          await store.writeStep(lease, {
            seq: 0,
            name: "s",
            kind: "step",
            status: "retrying",
            error: '{"name":"Error","message":"x"}',
            attempts: 1,
          }),
        ).toBe(true);
        let [entry] = await store.loadJournal("r");
        expect(entry).toMatchObject({
          seq: 0,
          name: "s",
          status: "retrying",
          progress: '{"n":1}',
          attempts: 1,
          fence: 1,
          workerId: "w1",
          startedAt: 5,
        });
        expect(
          await store.writeStep(lease, {
            seq: 0,
            name: "s",
            kind: "step",
            status: "completed",
            output: "42",
            attempts: 2,
          }),
        ).toBe(true);
        [entry] = await store.loadJournal("r");
        expect(entry).toMatchObject({
          status: "completed",
          output: "42",
          progress: null,
          attempts: 2,
        });
        expect(
          await store.writeStep(lease, {
            seq: 0,
            name: "s",
            kind: "step",
            status: "completed",
            output: "43",
            attempts: 3,
          }),
        ).toBe(false);
        expect(
          await store.writeStep(lease, {
            seq: 1,
            name: "t",
            kind: "sleep",
            status: "completed",
            output: "7",
            attempts: 1,
          }),
        ).toBe(true);
        expect(
          (await store.loadJournal("r")).map((e) => [e.seq, e.name, e.kind, e.output]),
        ).toEqual([
          [0, "s", "step", "42"],
          [1, "t", "sleep", "7"],
        ]);
      });

      it("refuses every write carrying a stale fence, and keeps what was stored", async () => {
        await store.createRun(newRun("r"));
        const { lease: stale } = await claimOne("w1", 40);
        expect(
          await store.writeStep(stale, {
            seq: 0,
            name: "a",
            kind: "step",
            status: "completed",
            output: "1",
            attempts: 1,
          }),
        ).toBe(true);
        await sleep(80);
        const [taken] = await store.claimRuns("w2", [WF], 1, 10_000);
        const fresh = { runId: "r", fence: taken!.fence, workerId: "w2" };
        expect(
          await store.writeStep(stale, {
            seq: 1,
            name: "b",
            kind: "step",
            status: "completed",
            output: "2",
            attempts: 1,
          }),
        ).toBe(false);
        expect(
          await store.writeStep(stale, {
            seq: 1,
            name: "b",
            kind: "step",
            status: "running",
            progress: "9",
            attempts: 0,
          }),
        ).toBe(false);
        expect(await store.completeRun(stale, '"stale"')).toBe(false);
        expect(await store.failRun(stale, '{"name":"Error","message":"stale"}')).toBe(false);
        expect(await store.releaseRun(stale, "handoff")).toBe(false);
        expect(await store.renewLeases("w1", [stale], 10_000)).toEqual([]);
        expect((await store.loadJournal("r")).map((e) => e.name)).toEqual(["a"]);
        expect(
          await store.writeStep(fresh, {
            seq: 1,
            name: "b",
            kind: "step",
            status: "completed",
            output: "2",
            attempts: 1,
          }),
        ).toBe(true);
        expect(await store.completeRun(fresh, '"done"')).toBe(true);
        expect(await store.getRun("r")).toMatchObject({
          status: "completed",
          output: '"done"',
          leaseOwner: null,
        });
        expect(await store.completeRun(fresh, '"twice"')).toBe(false);
      });

      it("refuses a step write whose name differs from the entry at that sequence", async () => {
        await store.createRun(newRun("r"));
        const { lease } = await claimOne();
        await store.writeStep(lease, {
          seq: 0,
          name: "a",
          kind: "step",
          status: "running",
          attempts: 0,
        });
        expect(
          await store.writeStep(lease, {
            seq: 0,
            name: "other",
            kind: "step",
            status: "completed",
            output: "1",
            attempts: 1,
          }),
        ).toBe(false);
      });

      it("hands a run off: queued, lease cleared, interruptions + 1, claimable at once", async () => {
        await store.createRun(newRun("r"));
        const { lease } = await claimOne();
        expect(await store.releaseRun(lease, "handoff")).toBe(true);
        expect(await store.getRun("r")).toMatchObject({
          status: "queued",
          leaseOwner: null,
          leaseExpiresAt: null,
          interruptions: 1,
          resumed: true,
        });
        const [again] = await store.claimRuns("w2", [WF], 1, 10_000);
        expect(again).toMatchObject({ id: "r", fence: 2, takeover: false, interruptions: 1 });
        expect(again!.resumedFrom).toEqual({
          cause: "handoff",
          msAgo: expect.any(Number) as number,
        });
      });

      it("fails a run with its error", async () => {
        await store.createRun(newRun("r"));
        const { lease } = await claimOne();
        expect(await store.failRun(lease, '{"name":"TerminalError","message":"no"}')).toBe(true);
        expect(await store.getRun("r")).toMatchObject({
          status: "failed",
          error: '{"name":"TerminalError","message":"no"}',
        });
        expect((await store.getRun("r"))!.completedAt).not.toBeNull();
      });
    });

    describe("cancel", () => {
      it("cancels a running run: fence bumped so the owner's next write is refused", async () => {
        await store.createRun(newRun("r"));
        const { lease } = await claimOne();
        const cancelled = await store.cancelRun("r");
        expect(cancelled).toMatchObject({
          status: "cancelled",
          fence: lease.fence + 1,
          leaseOwner: null,
        });
        expect(
          await store.writeStep(lease, {
            seq: 0,
            name: "a",
            kind: "step",
            status: "completed",
            output: "1",
            attempts: 1,
          }),
        ).toBe(false);
        expect(await store.renewLeases("w1", [lease], 10_000)).toEqual([]);
        expect(await store.cancelRun("r")).toBeUndefined();
        expect(await store.cancelRun("missing")).toBeUndefined();
        expect(await store.claimRuns("w2", [WF], 1, 10_000)).toEqual([]);
      });
    });

    describe("effects and compensation", () => {
      it("keeps an effect's idempotency key and its pending intent", async () => {
        await store.createRun(newRun("r"));
        const { lease } = await claimOne();
        const intent = {
          seq: 0,
          name: "pay",
          kind: "effect" as const,
          attempts: 0,
          idempotencyKey: "r:0:pay",
        };
        expect(await store.writeStep(lease, { ...intent, status: "pending" })).toBe(true);
        expect((await store.loadJournal("r"))[0]).toMatchObject({
          kind: "effect",
          status: "pending",
          idempotencyKey: "r:0:pay",
        });
        expect(
          await store.writeStep(lease, {
            ...intent,
            status: "completed",
            output: "1",
            attempts: 1,
            idempotencyKey: null,
          }),
        ).toBe(true);
        expect((await store.loadJournal("r"))[0]).toMatchObject({
          status: "completed",
          idempotencyKey: "r:0:pay",
        });
      });

      it("moves a failing run to compensating under its lease, then to compensated, keeping the reason", async () => {
        await store.createRun(newRun("r"));
        const { lease } = await claimOne();
        expect(
          await store.beginCompensation(lease, '{"name":"TerminalError","message":"no"}'),
        ).toBe(true);
        expect(await store.getRun("r")).toMatchObject({
          status: "compensating",
          leaseOwner: "w1",
          fence: 1,
        });
        // Still this owner's: journal writes and renewals go on.
        expect(
          await store.writeStep(lease, {
            seq: 1_000_000_000,
            name: "undo",
            kind: "compensation",
            status: "completed",
            attempts: 1,
          }),
        ).toBe(true);
        expect(await store.renewLeases("w1", [lease], 10_000)).toEqual([{ runId: "r", fence: 1 }]);
        expect(await store.markCompensated(lease)).toBe(true);
        expect(await store.getRun("r")).toMatchObject({
          status: "compensated",
          leaseOwner: null,
          error: '{"name":"TerminalError","message":"no"}',
        });
        expect((await store.listEvents("r")).map((e) => e.kind)).toEqual([
          "created",
          "claimed",
          "compensating",
          "compensated",
        ]);
        expect(await store.markCompensated(lease)).toBe(false);
      });

      it("cancels with compensation: the run waits, unowned, for any worker to undo it", async () => {
        await store.createRun(newRun("r"));
        const { lease } = await claimOne();
        const cancelled = await store.cancelRun("r", { compensate: true });
        expect(cancelled).toMatchObject({
          status: "compensating",
          leaseOwner: null,
          fence: 2,
          completedAt: null,
        });
        expect(JSON.parse(cancelled!.error!)).toMatchObject({ name: "CancelledError" });
        expect(
          await store.writeStep(lease, {
            seq: 0,
            name: "a",
            kind: "step",
            status: "completed",
            attempts: 1,
          }),
        ).toBe(false);
        const [claimed] = await store.claimRuns("w2", [WF], 1, 10_000);
        expect(claimed).toMatchObject({
          id: "r",
          status: "compensating",
          fence: 3,
          takeover: false,
          leaseOwner: "w2",
        });
        expect(await store.cancelRun("r", { compensate: true })).toBeUndefined(); // already compensating
        expect((await store.listEvents("r")).map((e) => e.kind)).toEqual([
          "created",
          "claimed",
          "cancelled",
          "compensating",
          "claimed",
        ]);
      });

      it("hands a run over for compensation, and takes over a compensating run whose lease expired", async () => {
        await store.createRun(newRun("r"));
        const { lease } = await claimOne("w1");
        expect(await store.releaseRun(lease, "compensate")).toBe(true);
        expect(await store.getRun("r")).toMatchObject({ status: "compensating", leaseOwner: null });
        // The worker that gave it up can no longer write to it.
        expect(
          await store.writeStep(lease, {
            seq: 0,
            name: "a",
            kind: "step",
            status: "completed",
            attempts: 1,
          }),
        ).toBe(false);
        expect(await store.markCompensated(lease)).toBe(false);
        const [first] = await store.claimRuns("w2", [WF], 1, 50);
        expect(first).toMatchObject({ status: "compensating", takeover: false });
        // An owner that stops in the middle of compensating hands the run back, still compensating.
        const firstLease = { runId: "r", fence: first!.fence, workerId: "w2" };
        expect(await store.releaseRun(firstLease, "compensate")).toBe(true);
        expect(await store.getRun("r")).toMatchObject({ status: "compensating", leaseOwner: null });
        const [again] = await store.claimRuns("w2", [WF], 1, 50);
        expect(again).toMatchObject({ status: "compensating", fence: first!.fence + 1 });
        await sleep(100);
        const [second] = await store.claimRuns("w3", [WF], 1, 10_000);
        expect(second).toMatchObject({
          id: "r",
          status: "compensating",
          takeover: true,
          fence: again!.fence + 1,
        });
      });

      it("reaps runs handed off or orphaned past abandonAfterMs, and only those", async () => {
        for (const id of ["handed", "orphan", "fresh", "queued", "other"]) {
          await store.createRun(newRun(id, id === "other" ? { workflow: "other" } : {}));
        }
        const claimed = await store.claimRuns("w1", [WF, "other"], 10, 40);
        const lease = (id: string) => ({
          runId: id,
          fence: claimed.find((r) => r.id === id)!.fence,
          workerId: "w1",
        });
        await store.releaseRun(lease("handed"), "handoff");
        await store.releaseRun(lease("queued"), "retry", 60_000);
        await sleep(150);
        await store.renewLeases("w1", [lease("fresh")], 10_000);
        const reaped = await store.reapAbandoned([{ workflow: WF, abandonAfterMs: 100 }]);
        // "queued" waits for a retry delay: it has not been claimable that long.
        expect(reaped.sort()).toEqual(["handed", "orphan"]);
        expect((await store.getRun("orphan"))!).toMatchObject({
          status: "compensating",
          leaseOwner: null,
        });
        expect(JSON.parse((await store.getRun("handed"))!.error!)).toMatchObject({
          name: "AbandonedError",
        });
        expect((await store.getRun("fresh"))!.status).toBe("running");
        expect((await store.getRun("other"))!.status).toBe("running");
        expect((await store.listEvents("orphan")).map((e) => e.kind)).toContain("abandoned");
        expect(await store.reapAbandoned([])).toEqual([]);
      });
    });

    describe("workers, workflows, events, shutdown reports", () => {
      it("registers workers and moves them through their states", async () => {
        await store.registerWorker({
          id: "w1",
          state: "running",
          host: "h",
          pid: 1,
          concurrency: 4,
        });
        await store.setWorkerState("w1", "draining");
        let [worker] = await store.listWorkers();
        expect(worker).toMatchObject({
          id: "w1",
          state: "draining",
          host: "h",
          pid: 1,
          concurrency: 4,
          stoppedAt: null,
        });
        await store.setWorkerState("w1", "stopped");
        [worker] = await store.listWorkers();
        expect(worker!.state).toBe("stopped");
        expect(worker!.stoppedAt).not.toBeNull();
      });

      it("keeps the newest version of each registered workflow", async () => {
        await store.registerWorkflows([
          { name: "b", version: 2 },
          { name: "a", version: 1 },
        ]);
        await store.registerWorkflows([{ name: "b", version: 1 }]);
        expect(await store.listWorkflows()).toEqual([
          { name: "a", version: 1 },
          { name: "b", version: 2 },
        ]);
      });

      it("appends events in order and keeps shutdown reports per worker", async () => {
        await store.createRun(newRun("r"));
        await store.appendEvent({
          runId: "r",
          kind: "lease-lost",
          workerId: "w1",
          fence: 3,
          detail: "why",
        });
        const events = await store.listEvents("r");
        expect(events.map((e) => e.kind)).toEqual(["created", "lease-lost"]);
        expect(events[1]).toMatchObject({ workerId: "w1", fence: 3, detail: "why" });
        await store.saveShutdownReport("w1", '{"n":1}');
        await store.saveShutdownReport("w1", '{"n":2}');
        expect((await store.latestShutdownReport("w1"))?.report).toBe('{"n":2}');
        expect(await store.latestShutdownReport("w9")).toBeUndefined();
      });
    });

    describe("wake-ups and time", () => {
      it("wakes a listener when another handle adds work", async () => {
        const other = await peer();
        let woken = 0;
        const stop = store.onWake(() => woken++);
        try {
          await sleep(30);
          const before = woken;
          await other.createRun(newRun("r"));
          const deadline = Date.now() + 2_000;
          while (woken === before && Date.now() < deadline) await sleep(5);
          expect(woken).toBeGreaterThan(before);
        } finally {
          stop();
        }
      });

      it("tells the time on the store's clock", async () => {
        const now = await store.now();
        expect(Math.abs(now - Date.now())).toBeLessThan(5_000);
      });
    });
  });
}
