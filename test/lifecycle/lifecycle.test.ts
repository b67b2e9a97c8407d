import { afterEach, describe, expect, it, vi } from "vitest";
import type { Lifecycle, LifecycleOptions, LifecycleState } from "../../src/lifecycle/index.js";
import { createLifecycle, LifecycleConfigError } from "../../src/lifecycle/index.js";

/** A small budget: drain gets 1500 - 200 - (50 + 100 + 150 + 200) = 800 ms. */
const fast: LifecycleOptions = {
  graceMs: 1500,
  safetyMarginMs: 200,
  phaseBudgetsMs: { notReady: 50, stopIntake: 100, finalize: 150, close: 200 },
  minDrainMs: 100,
  logReport: false,
  exitOnStop: false,
};

const started: Lifecycle[] = [];
function lifecycleFor(options: LifecycleOptions = {}): Lifecycle {
  const lifecycle = createLifecycle({ ...fast, ...options });
  started.push(lifecycle);
  return lifecycle;
}

afterEach(async () => {
  // Leave no shutdown (and so no timer) running behind a test.
  for (const lifecycle of started.splice(0)) {
    if (lifecycle.state !== "running") await lifecycle.stop();
  }
});

describe("createLifecycle", () => {
  it("starts running and ready", () => {
    const lifecycle = lifecycleFor();
    expect(lifecycle.state).toBe("running");
    expect(lifecycle.ready).toBe(true);
    expect(lifecycle.plan.drainMs).toBe(800);
  });

  it("refuses a budget that cannot fit", () => {
    expect(() => createLifecycle({ graceMs: 1000 })).toThrow(LifecycleConfigError);
  });

  it("refuses handlers on preStop or an unknown phase", () => {
    const lifecycle = lifecycleFor();
    expect(() => lifecycle.on("preStop" as never, "x", () => {})).toThrow(
      /not a phase that takes handlers/,
    );
    expect(() => lifecycle.on("drian" as never, "x", () => {})).toThrow(LifecycleConfigError);
  });
});

describe("stop()", () => {
  it("returns the same promise on every call", async () => {
    const lifecycle = lifecycleFor();
    const first = lifecycle.stop("first");
    const second = lifecycle.stop("second");
    expect(second).toBe(first);
    const report = await first;
    expect(report.reason).toBe("first");
    expect(await lifecycle.stop()).toBe(report);
  });

  it("is not ready from the first millisecond and runs the phases in order", async () => {
    const lifecycle = lifecycleFor();
    const seen: [string, LifecycleState, boolean][] = [];
    for (const phase of ["notReady", "stopIntake", "drain", "finalize", "close"] as const) {
      lifecycle.on(phase, phase, async () => {
        seen.push([phase, lifecycle.state, lifecycle.ready]);
        await new Promise((resolve) => setTimeout(resolve, 5));
      });
    }
    const stopping = lifecycle.stop();
    expect(lifecycle.ready).toBe(false);
    expect(lifecycle.state).toBe("not-ready");
    const report = await stopping;
    expect(seen).toEqual([
      ["notReady", "not-ready", false],
      ["stopIntake", "stopping-intake", false],
      ["drain", "draining", false],
      ["finalize", "finalizing", false],
      ["close", "closing", false],
    ]);
    expect(lifecycle.state).toBe("stopped");
    expect(report.phases.map((p) => p.phase)).toEqual([
      "notReady",
      "preStop",
      "stopIntake",
      "drain",
      "finalize",
      "close",
    ]);
    expect(report.exitCode).toBe(0);
    expect(report.escalated).toBe(false);
    for (const [i, phase] of report.phases.entries()) {
      if (i > 0) expect(phase.startedAt).toBeGreaterThanOrEqual(report.phases[i - 1]!.startedAt);
    }
  });

  it("runs the handlers of one phase concurrently", async () => {
    const lifecycle = lifecycleFor();
    let running = 0;
    let most = 0;
    for (const name of ["a", "b", "c"]) {
      lifecycle.on("drain", name, async () => {
        most = Math.max(most, ++running);
        await new Promise((resolve) => setTimeout(resolve, 20));
        running--;
      });
    }
    await lifecycle.stop();
    expect(most).toBe(3);
  });

  it("waits preStopDelayMs between notReady and stopIntake", async () => {
    const lifecycle = lifecycleFor({ graceMs: 2000, preStopDelayMs: 300 });
    const at: Record<string, number> = {};
    lifecycle.on("notReady", "t", () => void (at["notReady"] = Date.now()));
    lifecycle.on("stopIntake", "t", () => void (at["stopIntake"] = Date.now()));
    const report = await lifecycle.stop();
    expect(at["stopIntake"]! - at["notReady"]!).toBeGreaterThanOrEqual(295);
    expect(report.phases[1]).toMatchObject({ phase: "preStop", timedOut: false });
    expect(report.exitCode).toBe(0);
  });

  it("closes closeables one at a time in reverse order of registration, then close handlers", async () => {
    const lifecycle = lifecycleFor();
    const order: string[] = [];
    let open = 0;
    for (const name of ["store", "pool", "broker"]) {
      lifecycle.addCloseable({
        name,
        async close() {
          expect(++open).toBe(1);
          await new Promise((resolve) => setTimeout(resolve, 5));
          order.push(name);
          open--;
        },
      });
    }
    lifecycle.on("close", "flush logs", () => void order.push("flush logs"));
    const report = await lifecycle.stop();
    expect(order).toEqual(["broker", "pool", "store", "flush logs"]);
    expect(report.phases.at(-1)?.handlers.map((h) => [h.name, h.outcome])).toEqual([
      ["broker", "ok"],
      ["pool", "ok"],
      ["store", "ok"],
      ["flush logs", "ok"],
    ]);
  });

  it("aborts a handler still running at its deadline, records it timed out and moves on", async () => {
    const lifecycle = lifecycleFor();
    let reason: unknown;
    let deadline = 0;
    lifecycle.on("drain", "stuck", ({ signal, deadline: d }) => {
      deadline = d;
      signal.addEventListener("abort", () => {
        reason = signal.reason as unknown;
      });
      return new Promise(() => {}); // ignores the signal, never settles
    });
    lifecycle.on("drain", "quick", () => {});
    const later: string[] = [];
    lifecycle.on("finalize", "release leases", () => void later.push("finalize"));
    lifecycle.addCloseable({ name: "pool", close: () => void later.push("close") });
    const report = await lifecycle.stop();

    const drain = report.phases.find((p) => p.phase === "drain")!;
    expect(drain.timedOut).toBe(true);
    expect(drain.handlers).toEqual([
      expect.objectContaining({ name: "stuck", outcome: "timed-out" }),
      expect.objectContaining({ name: "quick", outcome: "ok" }),
    ]);
    expect(reason).toBeInstanceOf(DOMException);
    expect((reason as DOMException).name).toBe("TimeoutError");
    expect(drain.startedAt + drain.durationMs).toBeGreaterThanOrEqual(deadline - 2);
    expect(drain.startedAt + drain.durationMs).toBeLessThan(deadline + 100);
    expect(later).toEqual(["finalize", "close"]);
    expect(report.exitCode).toBe(1);
    expect(report.durationMs).toBeLessThan(1300);
  });

  it("records a handler that settles after its deadline as timed out", async () => {
    const lifecycle = lifecycleFor();
    lifecycle.on("notReady", "stalls the loop", (ctx) => {
      while (Date.now() <= ctx.deadline + 5) {
        // a synchronous stall: the deadline timer cannot fire before this returns
      }
    });
    const report = await lifecycle.stop();
    expect(report.phases[0]).toMatchObject({ phase: "notReady", timedOut: true });
    expect(report.exitCode).toBe(1);
  });

  it("keeps going when a closeable hangs: the rest are closed with an aborted signal", async () => {
    const lifecycle = lifecycleFor();
    const signals: [string, boolean][] = [];
    lifecycle.addCloseable({
      name: "first",
      close: (s) => void signals.push(["first", s.aborted]),
    });
    lifecycle.addCloseable({ name: "hangs", close: () => new Promise<void>(() => {}) });
    const report = await lifecycle.stop();
    expect(signals).toEqual([["first", true]]);
    expect(report.phases.at(-1)?.handlers.map((h) => [h.name, h.outcome])).toEqual([
      ["hangs", "timed-out"],
      ["first", "timed-out"],
    ]);
  });

  it("records a handler that throws, runs the others, and exits 1", async () => {
    const lifecycle = lifecycleFor();
    lifecycle.on("finalize", "sync", () => {
      throw new Error("journal flush failed");
    });
    lifecycle.on("finalize", "async", () => Promise.reject(new Error("lease release failed")));
    lifecycle.on("finalize", "fine", () => {});
    const report = await lifecycle.stop();
    const finalize = report.phases.find((p) => p.phase === "finalize")!;
    expect(finalize.errors).toEqual(["sync: journal flush failed", "async: lease release failed"]);
    expect(finalize.handlers.map((h) => h.outcome)).toEqual(["failed", "failed", "ok"]);
    expect(report.exitCode).toBe(1);
  });

  it("gives handlers their deadline and collects ctx.report details", async () => {
    const lifecycle = lifecycleFor();
    lifecycle.on("drain", "runs", (ctx) => {
      expect(ctx.phase).toBe("drain");
      expect(ctx.remainingMs()).toBeGreaterThan(700);
      expect(ctx.remainingMs()).toBeLessThanOrEqual(ctx.deadline - Date.now() + 1);
      ctx.report("runsHandedOff", 3);
    });
    lifecycle.on("finalize", "leases", (ctx) => ctx.report("leasesReleased", ["a", "b"]));
    const report = await lifecycle.stop();
    expect(report.details).toEqual({ runsHandedOff: 3, leasesReleased: ["a", "b"] });
  });

  it("refuses handlers for a phase that has already started", async () => {
    const lifecycle = lifecycleFor();
    let error: unknown;
    lifecycle.on("finalize", "late", () => {
      try {
        lifecycle.on("drain", "too late", () => {});
      } catch (e) {
        error = e;
      }
      lifecycle.on("close", "still fine", () => {});
    });
    const report = await lifecycle.stop();
    expect(String(error)).toMatch(/cannot add handler "too late" to the drain phase/);
    expect(report.phases.at(-1)?.handlers.map((h) => h.name)).toEqual(["still fine"]);
  });

  it("reports once through onReport and exits with the report's code when exitOnStop", async () => {
    const exit = vi.fn();
    const onReport = vi.fn();
    const lifecycle = lifecycleFor({ exitOnStop: true, exit, onReport });
    const report = await lifecycle.stop();
    expect(onReport).toHaveBeenCalledExactlyOnceWith(report);
    expect(exit).toHaveBeenCalledExactlyOnceWith(0);
  });

  it("does not exit on a programmatic stop() by default", async () => {
    const exit = vi.fn();
    const lifecycle = lifecycleFor({ exitOnStop: undefined, exit });
    await lifecycle.stop();
    expect(exit).not.toHaveBeenCalled();
  });
});

describe("escalate()", () => {
  it("aborts the running phase and skips to finalize", async () => {
    const lifecycle = lifecycleFor({ graceMs: 5000 });
    let reason: unknown;
    const ran: string[] = [];
    lifecycle.on("drain", "long", ({ signal }) => {
      setTimeout(() => lifecycle.escalate(), 20);
      return new Promise((resolve) => {
        signal.addEventListener("abort", () => {
          reason = signal.reason;
          resolve();
        });
      });
    });
    lifecycle.on("finalize", "f", () => void ran.push("finalize"));
    lifecycle.on("close", "c", () => void ran.push("close"));
    const started = Date.now();
    const report = await lifecycle.stop();
    expect(Date.now() - started).toBeLessThan(1000);
    expect((reason as DOMException).name).toBe("AbortError");
    expect(report.escalated).toBe(true);
    expect(report.exitCode).toBe(1);
    const drain = report.phases.find((p) => p.phase === "drain")!;
    expect(drain).toMatchObject({ interrupted: true, timedOut: false, skipped: false });
    expect(ran).toEqual(["finalize", "close"]);
  });

  it("during preStop skips stopIntake and drain", async () => {
    const lifecycle = lifecycleFor({ graceMs: 5000, preStopDelayMs: 2000 });
    const ran: string[] = [];
    for (const phase of ["stopIntake", "drain", "finalize", "close"] as const) {
      lifecycle.on(phase, phase, () => void ran.push(phase));
    }
    lifecycle.on(
      "notReady",
      "escalate soon",
      () => void setTimeout(() => lifecycle.escalate(), 20),
    );
    const report = await lifecycle.stop();
    expect(ran).toEqual(["finalize", "close"]);
    expect(report.phases.map((p) => [p.phase, p.skipped, p.interrupted])).toEqual([
      ["notReady", false, false],
      ["preStop", false, true],
      ["stopIntake", true, false],
      ["drain", true, false],
      ["finalize", false, false],
      ["close", false, false],
    ]);
    expect(report.durationMs).toBeLessThan(1000);
  });

  it("has no effect once finalize has begun", async () => {
    const lifecycle = lifecycleFor();
    lifecycle.on("finalize", "escalate", () => lifecycle.escalate());
    const report = await lifecycle.stop();
    expect(report.escalated).toBe(false);
    expect(report.exitCode).toBe(0);
  });
});

describe("watchdog", () => {
  it("writes the report and exits 1 when shutdown overruns, even with a blocked event loop", async () => {
    const exit = vi.fn();
    const onReport = vi.fn();
    // Watchdog at 1500 - 400 / 2 = 1300 ms.
    const lifecycle = lifecycleFor({ safetyMarginMs: 400, exitOnStop: true, exit, onReport });
    lifecycle.on("drain", "blocks the loop", () => {
      const until = Date.now() + 1350;
      while (Date.now() < until) {
        // a synchronous stall, as a runaway computation would cause
      }
      return new Promise(() => {});
    });
    lifecycle.on(
      "finalize",
      "waits",
      ({ signal }) => new Promise<void>((r) => signal.addEventListener("abort", () => r())),
    );
    const report = await lifecycle.stop();
    expect(report.watchdog).toBe(true);
    expect(report.exitCode).toBe(1);
    expect(report.phases.at(-1)).toMatchObject({ phase: "drain", interrupted: true });
    expect(report.phases.at(-1)?.errors[0]).toMatch(/watchdog fired 1300 ms into shutdown/);
    expect(exit).toHaveBeenCalledExactlyOnceWith(1);
    expect(onReport).toHaveBeenCalledExactlyOnceWith(report);
    // The machine, halted, never reports a second time.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(onReport).toHaveBeenCalledTimes(1);
    expect(exit).toHaveBeenCalledTimes(1);
  });
});
