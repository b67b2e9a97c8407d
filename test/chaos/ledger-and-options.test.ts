import { describe, expect, it } from "vitest";
import {
  parseDuration,
  parseKillWeights,
  resolveChaosOptions,
} from "../../src/chaos/chaos-options.js";
import { prepareChaosStore } from "../../src/chaos/chaos-store.js";
import { Ledger } from "../../src/chaos/ledger.js";
import { Prng } from "../../src/chaos/prng.js";
import { ConfigError } from "../../src/workflow/errors.js";

describe("the ledger", () => {
  const request = {
    key: "r:2:debit",
    runId: "r",
    account: "a",
    amount: -5,
    kind: "debit" as const,
  };

  it("applies each key once and answers a repeat with the first result", () => {
    const ledger = new Ledger(() => 42);
    ledger.open({ a: 100 });
    const first = ledger.apply({ ...request, fence: 1 });
    const again = ledger.apply({ ...request, fence: 1 });
    expect(first).toMatchObject({ status: "applied", op: { opId: 1 } });
    expect(again).toEqual({ status: "duplicate", op: (first as { op: unknown }).op });
    expect(ledger.snapshot()).toMatchObject({
      initial: { a: 100 },
      balances: { a: 95 },
      calls: [{ outcome: "applied" }, { outcome: "duplicate" }],
    });
  });

  it("refuses a fence older than the newest it has seen for the run, checks included", () => {
    const ledger = new Ledger();
    ledger.open({ a: 100 });
    expect(ledger.check({ key: request.key, runId: "r", fence: 3 })).toEqual({
      status: "not-found",
    });
    expect(ledger.apply({ ...request, fence: 2 })).toEqual({ status: "stale", newestFence: 3 });
    expect(ledger.check({ key: request.key, runId: "r", fence: 2 })).toEqual({
      status: "stale",
      newestFence: 3,
    });
    expect(ledger.apply({ ...request, fence: 3 })).toMatchObject({ status: "applied" });
    expect(ledger.snapshot().balances).toEqual({ a: 95 });
  });

  it("rejects an unknown account, changing nothing", () => {
    const ledger = new Ledger();
    expect(ledger.apply({ ...request, fence: 1 })).toEqual({
      status: "rejected",
      error: 'no account "a"',
    });
    expect(ledger.snapshot().ops).toEqual([]);
  });
});

describe("chaos options", () => {
  it("reads durations and kill weights", () => {
    expect(parseDuration("120s")).toBe(120_000);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("1500ms")).toBe(1_500);
    expect(parseDuration("90")).toBe(90_000);
    expect(() => parseDuration("soon")).toThrow(/120s, 2m or 1500ms/);
    expect(parseKillWeights("k8s:2,sigkill:1")).toEqual({ k8s: 2, sigkill: 1, stop: 0 });
    expect(parseKillWeights("stop")).toEqual({ k8s: 0, sigkill: 0, stop: 1 });
    expect(() => parseKillWeights("oom:1")).toThrow(/k8s, sigkill, stop/);
  });

  it("refuses a grace period the worker's shutdown phases cannot fit in, with the arithmetic", () => {
    expect(() => resolveChaosOptions({ graceMs: 5_000 })).toThrow(ConfigError);
    expect(() => resolveChaosOptions({ graceMs: 5_000 })).toThrow(/at least 7100 ms/);
    expect(resolveChaosOptions({ durationMs: 120_000, seed: 3 })).toMatchObject({
      seed: 3,
      killIntervalMs: 4_000,
      workers: 4,
      graceMs: 10_000,
    });
  });

  it("never writes into the user's database: the default store becomes a temp file, an existing file is refused", () => {
    expect(prepareChaosStore(undefined, "/tmp/x", 1).url).toBe("sqlite:/tmp/x/chaos.db");
    expect(prepareChaosStore("sqlite:baton.db", "/tmp/x", 1).url).toBe("sqlite:/tmp/x/chaos.db");
    expect(() => prepareChaosStore(`sqlite:${process.cwd()}/package.json`, "/tmp/x", 1)).toThrow(
      /only writes into a fresh store/,
    );
    const pg = prepareChaosStore("postgres://u@h:5432/db?schema=prod", "/tmp/x", 7);
    expect(pg.url).toMatch(/^postgres:\/\/u@h:5432\/db\?schema=baton_chaos_7_[a-z0-9]+$/);
  });

  it("draws the same schedule from the same seed", () => {
    const draw = (seed: number) => {
      const rng = new Prng(seed);
      return Array.from({ length: 5 }, () => rng.weighted({ k8s: 1, sigkill: 1, stop: 1 }));
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
  });
});
