/** A short game day on PostgreSQL, in a fresh schema that the harness drops at the end. */
import { describe, expect, it } from "vitest";
import { runChaos } from "../../src/chaos/run-chaos.js";
import { usePostgres } from "../support/postgres.js";

const pg = usePostgres();

describe("chaos on PostgreSQL", () => {
  it("kills workers every way while runs are in flight, and every invariant holds", async () => {
    const report = await runChaos({
      store: pg.url,
      runs: 80,
      workers: 3,
      durationMs: 8_000,
      seed: 12,
      nodeArgs: ["--import", "tsx"],
    });
    expect(report.checks.flatMap((c) => c.violations)).toEqual([]);
    expect(report).toMatchObject({ ok: true, violations: 0 });
    expect(report.runs).toMatchObject({ submitted: 80, lost: 0, failed: 0 });
    expect(report.terminations.rolling).toBeGreaterThanOrEqual(2);
    expect(report.store).toMatch(/schema=baton_chaos_12_.*a fresh schema, dropped at the end/);
    const left = await pg.admin<{ n: number }>(
      "SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name LIKE 'baton_chaos_12_%'",
    );
    expect(left[0]?.n).toBe(0);
  });
});
