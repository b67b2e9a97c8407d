/**
 * A short game day on SQLite through the command line: real worker processes terminated
 * every way the harness knows while agent runs move money; every invariant must hold and
 * the exit code must say so.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { ChaosReport } from "../../src/chaos/report.js";

const ENTRY = fileURLToPath(new URL("../../src/chaos/main.ts", import.meta.url));

function chaosCli(args: string[], timeoutMs: number) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", ENTRY, "chaos", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGINT");
      reject(new Error(`baton chaos did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("baton chaos on SQLite", () => {
  it("kills workers every way while runs are in flight, and every invariant holds (exit code 0)", async () => {
    const args = ["--runs", "80", "--workers", "3", "--duration", "8s", "--seed", "11", "--json"];
    const { code, stdout, stderr } = await chaosCli(args, 80_000);
    const report = JSON.parse(stdout) as ChaosReport;
    expect(
      report.checks.flatMap((c) => c.violations),
      stderr,
    ).toEqual([]);
    expect(report).toMatchObject({ ok: true, violations: 0, seed: 11 });
    expect(report.runs).toMatchObject({ submitted: 80, lost: 0, failed: 0 });
    expect(report.runs.completed + report.runs.compensated).toBe(80);
    expect(report.runs.compensated).toBeGreaterThan(0);
    const t = report.terminations;
    expect(t.rolling).toBeGreaterThanOrEqual(2);
    expect(t.k8s + t.sigkill + t.stop).toBeGreaterThanOrEqual(2);
    expect(report.money.after).toBe(report.money.before);
    expect(report.shutdown.max).toBeLessThan(report.shutdown.graceMs);
    expect(code).toBe(0);
  });
});
